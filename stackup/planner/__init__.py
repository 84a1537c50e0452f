"""stackup.planner."""
