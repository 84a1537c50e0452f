"""Error answers of the engine as `stackup.errors` exceptions (shared by the client and streams)."""

from __future__ import annotations

from pydantic import ValidationError

from stackup.errors import NotFound, RuntimeFailure
from stackup.runtime.native.unixhttp import Answer
from stackup.runtime.wire.models import ErrorBody, ErrorKind


def raise_for_answer(answer: Answer) -> None:
    """Map an error answer to the exception the engine raised on its side."""
    if answer.ok:
        return
    try:
        body = ErrorBody.model_validate_json(answer.content)
    except ValidationError:
        body = ErrorBody(kind=ErrorKind.FAILURE, message=f"HTTP {answer.status}: {answer.text}")
    if body.kind is ErrorKind.NOT_FOUND or answer.status == 404:
        raise NotFound(body.message)
    raise RuntimeFailure(body.message)
