"""The engine side of `docker build`: executor, steps, snapshots, the layer cache and RUN mounts."""
