"""``attestation-broker`` command-line inputs: hex and base64 text decoded to bytes, text formats left alone."""

from __future__ import annotations

import base64

import pytest
from attestation_broker.cli.common import decode_text_bytes

from tests.support.vectors import vector

REPORT = bytes(range(256)) * 5


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (REPORT.hex().encode(), REPORT),  # hex text
        (b"0x" + REPORT.hex().encode() + b"\n", REPORT),  # 0x prefix and a newline
        (base64.b64encode(REPORT), REPORT),  # standard base64
        (base64.b64encode(REPORT).rstrip(b"=") + b"\n", REPORT),  # unpadded, with a newline
        (base64.urlsafe_b64encode(REPORT).rstrip(b"="), REPORT),  # base64url without padding
        (REPORT, REPORT),  # already binary
    ],
)
def test_encoded_binary_is_decoded(given: bytes, expected: bytes) -> None:
    assert decode_text_bytes(given) == expected


@pytest.mark.parametrize(
    "text",
    [
        vector("tpm/azure-vtpm-quote-nonce010203.akpub.pem"),  # PEM: all base64url characters once spaces go
        vector("roots/amd/amd_milan_vcek_crl.pem"),
        b'{"nonce": "' + b"ab" * 64 + b'"}',
        b"eyJhbGciOiJFUzI1NiJ9." + b"a" * 80 + b".sig",
    ],
)
def test_text_formats_stay_text(text: bytes) -> None:
    assert decode_text_bytes(text) == text
