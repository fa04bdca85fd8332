import socket

import pytest


def test_guard_blocks_non_loopback_connect() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(RuntimeError, match="network guard"):
            sock.connect(("192.0.2.1", 443))


def test_guard_blocks_name_resolution() -> None:
    with pytest.raises(RuntimeError, match="network guard"):
        socket.getaddrinfo("kdsintf.amd.com", 443)


def test_guard_allows_loopback(replay) -> None:  # type: ignore[no-untyped-def]
    import urllib.request

    replay.add("/x", b"ok")
    with urllib.request.urlopen(replay.base_url + "/x", timeout=2) as response:
        assert response.read() == b"ok"
