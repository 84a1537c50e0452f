"""stackup.dev."""
