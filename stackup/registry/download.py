"""Downloading blobs: parallel, verified while streaming, retried on network errors, cancellable.

The first failing blob stops the others at their next chunk and cancels those not started; every
writer that did not verify is aborted, so a failed pull leaves only complete blobs in the sink.
"""

from __future__ import annotations

import http.client
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait

import httpx

from stackup.registry.blobs import BlobProgress, BlobSink, BlobState, BlobWriter, Progress, hasher_for
from stackup.registry.client import RegistryClient, scope
from stackup.registry.errors import DigestMismatch, RegistryUnreachable, describe_error
from stackup.registry.media import Descriptor
from stackup.registry.reference import Reference

_CHUNK = 256 << 10


def download_all(client: RegistryClient, ref: Reference, blobs: list[Descriptor], sink: BlobSink,
                 progress: Progress | None) -> None:
    """Download `blobs` into `sink`, `max_concurrent_downloads` at a time; raises the first error."""
    if not blobs:
        return
    workers = max(1, min(client.config.max_concurrent_downloads, len(blobs)))
    stop = threading.Event()
    with ThreadPoolExecutor(workers, thread_name_prefix="pull") as pool:
        futures: list[Future[None]] = [pool.submit(download_blob, client, ref, d, sink, progress, stop=stop)
                                       for d in blobs]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        stop.set()  # downloads in flight abort at their next chunk; queued ones never start
        for future in pending:
            future.cancel()
        for future in futures:
            error = future.exception() if future.done() and not future.cancelled() else None
            if error is not None and not isinstance(error, _Stopped):
                raise error


class _Stopped(Exception):
    """Another blob of the same pull failed; this one gave up (and discarded its bytes)."""


def download_blob(client: RegistryClient, ref: Reference, descriptor: Descriptor, sink: BlobSink,
                  progress: Progress | None, *, stop: threading.Event | None = None) -> None:
    """Stream one blob into a writer of `sink`, verifying size and digest; retried on network errors."""
    attempts = max(1, client.config.retries)
    for attempt in range(attempts):
        writer = sink.open_writer(descriptor.digest, descriptor.size, descriptor.media_type)
        try:
            _stream_into(client, ref, descriptor, writer, progress=progress, stop=stop)
        except (httpx.TransportError, RegistryUnreachable) as exc:
            writer.abort()
            if attempt + 1 == attempts:
                raise RegistryUnreachable(f"download of {descriptor.digest} failed {attempts} times: {exc}; "
                                          "check the network and retry", image=ref.familiar) from exc
            time.sleep(0.5 * 2 ** attempt)
        except BaseException:
            writer.abort()
            raise
        else:
            writer.commit()
            if progress:  # after the commit: a store may start unpacking this layer right away
                progress(BlobProgress(descriptor.digest, descriptor.media_type, BlobState.DONE,
                                      descriptor.size, descriptor.size))
            return


def _stream_into(client: RegistryClient, ref: Reference, descriptor: Descriptor, writer: BlobWriter, *,
                 progress: Progress | None, stop: threading.Event | None) -> None:
    digest, total = descriptor.digest, descriptor.size
    hasher = hasher_for(digest)
    done = 0
    report = progress or (lambda _event: None)
    report(BlobProgress(digest, descriptor.media_type, BlobState.DOWNLOADING, 0, total))
    with client.blob_fetcher().open(ref, digest, scopes=(scope(ref),)) as response:
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise RegistryUnreachable(f"download of {digest} broke off after {done} bytes: "
                                          f"{describe_error(exc)}", image=ref.familiar) from exc
            if not chunk:
                if response.length:  # http.client returns b"" rather than raising on a short body
                    raise RegistryUnreachable(f"download of {digest} broke off after {done} bytes, "
                                              f"{response.length} short", image=ref.familiar)
                break
            if stop is not None and stop.is_set():
                raise _Stopped(digest)
            done += len(chunk)
            if done > total:
                raise DigestMismatch(f"blob {digest} is larger than the {total} bytes its manifest says; "
                                     "refused", image=ref.familiar)
            hasher.update(chunk)
            writer.write(chunk)
            report(BlobProgress(digest, descriptor.media_type, BlobState.DOWNLOADING, done, total))
    actual = f"{digest.partition(':')[0]}:{hasher.hexdigest()}"
    if done != total or actual != digest:
        raise DigestMismatch(f"blob {digest} arrived as {done} bytes hashing to {actual}; nothing was "
                             "stored: the registry's copy is damaged, report it to its operator",
                             image=ref.familiar)


def download_to_memory(client: RegistryClient, ref: Reference, descriptor: Descriptor,
                       sink: BlobSink | None) -> bytes:
    """A small blob (a config) in memory, verified, and committed to `sink` as well if given."""
    collected = _Collect()
    download_blob(client, ref, descriptor, _Tee(collected, sink), None)
    return b"".join(collected.parts)


class _Collect:
    """A writer that keeps the bytes in memory (for the config)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        self.parts.clear()


class _Tee:
    """A sink whose writers feed both the in-memory collector and the real sink (if it lacks the blob)."""

    def __init__(self, collect: _Collect, sink: BlobSink | None) -> None:
        self._collect, self._sink = collect, sink

    def has(self, digest: str) -> bool:
        return False

    def read(self, digest: str) -> bytes:
        raise NotImplementedError("the tee only writes")

    def open_writer(self, digest: str, size: int, media_type: str) -> BlobWriter:
        self._collect.abort()
        inner = self._sink.open_writer(digest, size, media_type) if self._sink else None
        return _TeeWriter(self._collect, inner)


class _TeeWriter:
    def __init__(self, first: BlobWriter, second: BlobWriter | None) -> None:
        self._writers = [first] + ([second] if second else [])

    def write(self, data: bytes) -> None:
        for writer in self._writers:
            writer.write(data)

    def commit(self) -> None:
        for writer in self._writers:
            writer.commit()

    def abort(self) -> None:
        for writer in self._writers:
            writer.abort()


