"""stackup.registry: a client of OCI distribution registries (pull, push, login), engine-agnostic.

Like `stackup.net`, a library the engine uses: it streams verified blobs into a caller's
`BlobSink` and reads them from a `BlobSource`; it never touches the image store itself.
Modules: reference (names), platform, media (manifests), config (RegistryConfig), transport
(endpoints, TLS, pooled HTTP), auth (challenges, tokens, Docker credentials), client (requests,
errors), blobs (the store seam: BlobSink, BlobWriter, progress), blobfetch (blob bodies over
http.client), download (parallel verified downloads), pull, push, login, sinks (directory
sink/source, DiffID checks).
"""
