"""stackup.runtime.engine.supervision.manager."""
