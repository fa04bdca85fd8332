"""Make moto's KMS ``Sign`` behave like AWS for ``MessageType``.

moto (5.x) ignores ``MessageType`` and always hashes ``Message`` (its docstring: "DIGEST is not yet
implemented"), and it accepts RAW messages of any length. AWS KMS signs a 32-byte SHA-256 digest as-is
for ``MessageType=DIGEST`` and rejects RAW messages over 4096 bytes. The broker relies on both (JWS
signing inputs of attestation tokens exceed 4 KiB), so the in-process moto server is taught the real
behaviour before it starts. Only used by tests.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_PATCHED = "_broker_message_type_patch"


def _validation_error(message: str) -> Exception:
    from moto.kms.exceptions import ValidationException

    return ValidationException(message)


def honour_message_type() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    from moto.kms.responses import KmsResponse

    original = KmsResponse.sign
    if getattr(original, _PATCHED, False):
        return

    def sign(self: Any) -> str:
        message_type = self._get_param("MessageType") or "RAW"
        message = self._get_param("Message")
        if message_type == "RAW":
            if len(message) > 4096:
                raise _validation_error("Message must be 4096 bytes or less for MessageType RAW")
            return str(original(self))
        if message_type != "DIGEST" or self._get_param("SigningAlgorithm") != "ECDSA_SHA_256":
            return str(original(self))
        if len(message) != 32:
            raise _validation_error("Digest must be 32 bytes for ECDSA_SHA_256")
        key = self.kms_backend.describe_key(self._get_param("KeyId"))
        private = key.private_key.private_key
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            return str(original(self))
        signature = private.sign(message, ec.ECDSA(Prehashed(hashes.SHA256())))
        return json.dumps(
            {"KeyId": key.arn, "Signature": base64.b64encode(signature).decode(), "SigningAlgorithm": "ECDSA_SHA_256"}
        )

    setattr(sign, _PATCHED, True)
    KmsResponse.sign = sign  # type: ignore[method-assign]


@contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode on loopback (real HTTP), behaving like AWS for KMS MessageType; yields its URL."""
    from moto.server import ThreadedMotoServer

    honour_message_type()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
