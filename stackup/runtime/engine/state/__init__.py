"""stackup.runtime.engine.state.store."""
