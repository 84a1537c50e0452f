"""stackup.runtime.native.runtime."""
