"""stackup.runtime.engine.images.store."""
