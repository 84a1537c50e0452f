"""The stack as Kubernetes objects: render (pure), apply/plan/down (server-side apply).

`render.translate` builds typed objects from the official client's models; `cluster` talks to an
API server through the same client, so nothing here speaks raw HTTP or shells out to kubectl.
"""
