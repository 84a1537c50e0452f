"""Where the webapp is: the stack's own network inside the `tests` container (WEBAPP_URL), or a
stack the stackup pytest plugin brings up for this session when the tests run on the host."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

if os.environ.get("WEBAPP_URL"):

    @pytest.fixture(scope="session")
    def base_url() -> str:
        return os.environ["WEBAPP_URL"].rstrip("/")

else:
    from stackup.testing import StackEnvironment, stack_fixture

    # up --wait once for the session (the app and what it depends on), down -v at the end; an
    # empty WEBAPP_PORT publishes the app on a free port, so parallel runs never collide.
    webapp = stack_fixture("../../webapp/compose.yaml", scope="session", services=["app"],
                           env={"WEBAPP_PORT": ""})

    @pytest.fixture(scope="session")
    def base_url(webapp: StackEnvironment) -> Iterator[str]:
        yield webapp.url("app", 8000).rstrip("/")
