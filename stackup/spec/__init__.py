"""stackup.spec."""
