"""stackup.runtime.engine.network."""
