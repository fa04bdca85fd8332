"""The local server's event loop choice (attestation_broker.server.event_loop): uvloop, a dependency of the package
on Linux and macOS, when importable; the standard asyncio loop otherwise."""

from __future__ import annotations

import sys

import pytest
from attestation_broker.server import event_loop
from granian.constants import Loops


def test_uvloop_when_installed() -> None:
    pytest.importorskip("uvloop", reason="uvloop is not a dependency on this platform")
    assert event_loop() is Loops.uvloop


def test_asyncio_loop_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert event_loop() is Loops.asyncio
