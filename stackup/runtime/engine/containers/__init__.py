"""stackup.runtime.engine.containers.manager."""
