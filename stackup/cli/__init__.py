"""stackup.cli."""
