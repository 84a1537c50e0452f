"""stackup.net."""
