"""stackup.runtime.wire."""
