"""One loopback replay server per test module (the suite-wide fixture starts one per test, and its
shutdown poll costs ~0.5 s each); routes and recorded requests are reset before every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.replay import ReplayServer, replay_server


@pytest.fixture(scope="module")
def _module_replay() -> Iterator[ReplayServer]:
    with replay_server() as server:
        yield server


@pytest.fixture
def replay(_module_replay: ReplayServer) -> ReplayServer:
    _module_replay.routes.clear()
    _module_replay.requests.clear()
    return _module_replay
