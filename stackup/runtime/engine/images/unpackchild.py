"""The background unpack's child process: `python -m stackup.runtime.engine.images.unpackchild
ROOT IMAGE_ID...` unpacks the images' missing layers (DiffIDs checked) in the store at ROOT
(`unpacking.Background` runs it under `nice`, out of the engine's process so the engine's own
threads keep the GIL)."""

from __future__ import annotations

import sys
from pathlib import Path

from stackup.errors import NotFound, StackupError
from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.wire.paths import EnginePaths


def main(argv: list[str]) -> int:
    store = ImageStore(EnginePaths(root=Path(argv[0])))
    failed = 0
    for image_id in argv[1:]:
        try:
            store.layer_dirs(store.get(image_id))
        except NotFound:
            continue  # removed meanwhile
        except StackupError as exc:
            sys.stderr.write(f"{exc}\n")
            failed = 1
    return failed


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
