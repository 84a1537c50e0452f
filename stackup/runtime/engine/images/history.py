"""`image history`: an image's config history paired with the layers its steps made.

A config's `history` lists every step; those without `empty_layer` made one layer each, in
order. Archives made by other tools sometimes have no history or a short one: every layer
without a step gets one of its own, so each layer is shown once and sizes add up.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from stackup.runtime.engine.images.store import ImageStore
from stackup.runtime.wire.images import HistoryEntry

MISSING = "<missing>"
_WHEN: TypeAdapter[datetime] = TypeAdapter(datetime)


def _when(value: Any) -> datetime | None:
    try:
        return _WHEN.validate_python(value) if value else None
    except ValidationError:
        return None


def image_history(store: ImageStore, ref: str) -> list[HistoryEntry]:
    image = store.get(ref)
    steps = json.loads(store.config_bytes(image.id)).get("history") or []
    layers = list(image.layers)
    entries = []
    for step in steps:
        empty = bool(step.get("empty_layer"))
        size = 0 if empty or not layers else layers.pop(0).size
        entries.append(HistoryEntry(
            id=MISSING, created=_when(step.get("created")), created_by=str(step.get("created_by", "")),
            size=size, comment=str(step.get("comment", "")), empty_layer=empty))
    entries += [HistoryEntry(id=MISSING, created=image.created, size=layer.size) for layer in layers]
    entries.reverse()
    if entries:
        entries[0] = entries[0].model_copy(update={"id": image.id, "tags": image.refs})
    return entries
