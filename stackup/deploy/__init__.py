"""A loaded `Project` rendered for an existing distributed engine (Kubernetes, Docker Swarm).

Not a `Runtime`: the cluster schedules, restarts and routes; stackup only translates the stack
into the cluster's objects, applies them, and removes what it owns. Every key that does not
translate is reported as a located warning (`Notes`) rather than dropped silently.
"""
