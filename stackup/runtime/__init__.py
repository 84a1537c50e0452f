"""stackup.runtime."""
