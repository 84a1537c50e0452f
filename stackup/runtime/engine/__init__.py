"""stackup.runtime.engine."""
