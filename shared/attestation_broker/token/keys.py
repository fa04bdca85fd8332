"""Published signing keys: the active signer plus retired keys kept for an overlap window.

``/jwks`` lists the active key and every retired public key whose ``published_until`` is still in
the future, so tokens signed just before a rotation keep verifying until they expire. Locally the
retired keys live in ``<data_dir>/retired-keys.json``; ``attestation-broker keys rotate`` moves the
active key there and creates a new one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from attestation_broker.errors import CONFIG_INVALID
from attestation_broker.token.signers import LocalSigner, Signer


@dataclass(frozen=True)
class RetiredKey:
    jwk: dict[str, Any]
    published_until: datetime


class KeyRing:
    def __init__(self, active: Signer, retired: tuple[RetiredKey, ...] = ()) -> None:
        self.active = active
        self.retired = retired

    def published(self, now: datetime) -> list[dict[str, Any]]:
        keys = [self.active.public_jwk()]
        keys += [r.jwk for r in self.retired if r.published_until > now and r.jwk["kid"] != self.active.key_id]
        return keys

    def jwks(self, now: datetime) -> dict[str, Any]:
        return {"keys": self.published(now)}


def _load_retired(path: Path) -> tuple[RetiredKey, ...]:
    if not path.exists():
        return ()
    try:
        entries = json.loads(path.read_text())
        return tuple(
            RetiredKey(dict(e["jwk"]), datetime.fromisoformat(e["published_until"])) for e in entries["retired"]
        )
    except (ValueError, KeyError, TypeError):
        raise CONFIG_INVALID(f"{path.name} is malformed") from None


def local_keyring(data_dir: Path) -> KeyRing:
    signer = LocalSigner.load_or_create(data_dir / "signing-key.pem")
    return KeyRing(signer, _load_retired(data_dir / "retired-keys.json"))


def rotate_local(data_dir: Path, *, now: datetime, overlap: timedelta) -> tuple[str, str]:
    """Retire the active local key (published for ``overlap``) and create a new one; returns (old, new) kids."""
    key_path = data_dir / "signing-key.pem"
    old = LocalSigner.load_or_create(key_path)
    retired = [r for r in _load_retired(data_dir / "retired-keys.json") if r.published_until > now]
    retired.append(RetiredKey(old.public_jwk(), now + overlap))
    doc = {
        "retired": [{"jwk": r.jwk, "published_until": r.published_until.astimezone(UTC).isoformat()} for r in retired]
    }
    tmp = data_dir / "retired-keys.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(data_dir / "retired-keys.json")
    archived = data_dir / f"retired-{old.key_id}.pem"
    key_path.replace(archived)
    new = LocalSigner.load_or_create(key_path)
    return old.key_id, new.key_id
