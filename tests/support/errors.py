"""One way for tests to assert a refusal's stable error code (the catalogue in ``errors.py`` files).

``code_of(fn, *args)`` calls ``fn`` and returns the code name of the ``BrokerError`` it must raise;
``raised_code(exc_info)`` reads it from a ``pytest.raises`` block; ``expect`` also checks the detail text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from attestation_broker.errors import BrokerError


def raised_code(exc: pytest.ExceptionInfo[BrokerError]) -> str:
    return exc.value.code.name


def code_of(fn: Callable[..., object], *args: Any, **kwargs: Any) -> str:
    with pytest.raises(BrokerError) as exc:
        fn(*args, **kwargs)
    return exc.value.code.name


def expect(fn: Callable[[], object], expected: str, detail: str) -> None:
    """Assert the error code and that the (client-visible) detail names the failed check."""
    with pytest.raises(BrokerError) as info:
        fn()
    assert (info.value.code.name, detail in info.value.detail) == (expected, True), info.value.detail
