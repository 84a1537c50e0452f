"""stackup's `Backend` over an existing Docker Engine (or Podman's Docker-compatible socket).

`DockerRuntime` (runtime.py) is the entry point; the other modules are the parts it is made of:
where the daemon is (endpoint.py), how daemon errors become stackup's (errors.py), what a
`ContainerSpec` is in the Engine API's words and back (translate.py), the Docker Compose labels
written next to stackup's own (labels.py), and live process connections (streams.py).
"""
