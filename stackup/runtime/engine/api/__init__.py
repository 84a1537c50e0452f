"""stackup.runtime.engine.api.app."""
