"""Published signing keys: one active signer per algorithm plus retired keys kept for an overlap window.

``/jwks`` lists every active key (ES256 for EAR tokens, RS256 for federation audiences that need it) and
every retired public key whose ``published_until`` is still in the future, so tokens signed just before a
rotation keep verifying until they expire. Locally the retired keys of both algorithms live in
``<data_dir>/retired-keys.json``; ``attestation-broker keys rotate [--alg RS256]`` moves the active key of
that algorithm there and creates a new one. On AWS the retired keys are KMS keys named by the
``retired_signers`` / ``retired_signers_rs256`` settings with their ``published_until`` (docs/deploy.md
"Rotating the KMS signing keys"); their public halves are read from KMS on first use and only while their
window is open, so an expired entry costs nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from attestation_broker.errors import CONFIG_INVALID
from attestation_broker.files import private_file
from attestation_broker.token.signers import ES256, RS256, LazySigner, LocalRsaSigner, LocalSigner, Signer

KEY_FILES = {ES256: "signing-key.pem", RS256: "signing-key-rs256.pem"}


@dataclass(frozen=True)
class RetiredKey:
    jwk: dict[str, Any]
    published_until: datetime


@dataclass(frozen=True)
class RetiredSigner:
    """A retired key whose public JWK comes from its signer backend (a KMS key: ``GetPublicKey`` only, no
    ``Sign``), read lazily so a cold start pays nothing for it and an expired entry is never fetched."""

    signer: Signer
    published_until: datetime

    @property
    def jwk(self) -> dict[str, Any]:
        return self.signer.public_jwk()


class Retired(Protocol):
    @property
    def jwk(self) -> dict[str, Any]: ...

    @property
    def published_until(self) -> datetime: ...


class KeyRing:
    """``active`` signs EAR tokens; ``extra`` holds the active signers of other algorithms (one each)."""

    def __init__(self, active: Signer, retired: tuple[Retired, ...] = (), *, extra: tuple[Signer, ...] = ()) -> None:
        self.active = active
        self.retired = retired
        self.extra = tuple(s for s in extra if s.algorithm != active.algorithm)

    @property
    def algorithms(self) -> tuple[str, ...]:
        return (self.active.algorithm, *(s.algorithm for s in self.extra))

    def signer_for(self, algorithm: str) -> Signer:
        for signer in (self.active, *self.extra):
            if signer.algorithm == algorithm:
                return signer
        raise CONFIG_INVALID(f"no {algorithm} signing key is configured")

    def published(self, now: datetime) -> list[dict[str, Any]]:
        keys = [s.public_jwk() for s in (self.active, *self.extra)]
        live = {k["kid"] for k in keys}
        for retired in self.retired:
            if retired.published_until > now:  # checked first: an expired KMS entry is never fetched
                jwk = retired.jwk
                if jwk["kid"] not in live:
                    keys.append(jwk)
                    live.add(jwk["kid"])
        return keys

    def verification_jwk(self, kid: object, algorithm: str, now: datetime) -> dict[str, Any] | None:
        """The published key of ``algorithm`` named ``kid``, looking only at keys of that algorithm: verifying an
        ES256 token never reads the RS256 key's public half (a KMS ``GetPublicKey`` on a cold start)."""
        candidates = [s.public_jwk() for s in (self.active, *self.extra) if s.algorithm == algorithm]
        found = next((jwk for jwk in candidates if jwk["kid"] == kid), None)
        if found is None:
            found = next(
                (r.jwk for r in self.retired if r.published_until > now and r.jwk["kid"] == kid),
                None,
            )
        # Keys retired before RS256 existed were stored without "alg"; the caller checks their kty and curve.
        return found if found is not None and found.get("alg", algorithm) == algorithm else None

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


def local_rsa_signer(data_dir: Path) -> Signer:
    """The local RS256 key, created on first use (see LazySigner)."""
    return LazySigner(RS256, lambda: LocalRsaSigner.load_or_create(data_dir / KEY_FILES[RS256]))


def local_keyring(data_dir: Path, *, rsa: bool = False) -> KeyRing:
    signer = LocalSigner.load_or_create(data_dir / KEY_FILES[ES256])
    extra = (local_rsa_signer(data_dir),) if rsa else ()
    return KeyRing(signer, _load_retired(data_dir / "retired-keys.json"), extra=extra)


def _load_local(algorithm: str, path: Path) -> Signer:
    if algorithm == RS256:
        return LocalRsaSigner.load_or_create(path)
    if algorithm == ES256:
        return LocalSigner.load_or_create(path)
    raise CONFIG_INVALID(f"unsupported signing algorithm {algorithm}")


def rotate_local(data_dir: Path, *, now: datetime, overlap: timedelta, algorithm: str = ES256) -> tuple[str, str]:
    """Retire the active local key of ``algorithm`` (published for ``overlap``) and create a new one;
    returns (old, new) kids."""
    key_path = data_dir / KEY_FILES.get(algorithm, "")
    old = _load_local(algorithm, key_path)
    retired = [r for r in _load_retired(data_dir / "retired-keys.json") if r.published_until > now]
    retired.append(RetiredKey(old.public_jwk(), now + overlap))
    doc = {
        "retired": [{"jwk": r.jwk, "published_until": r.published_until.astimezone(UTC).isoformat()} for r in retired]
    }
    tmp = private_file(data_dir / "retired-keys.json.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(data_dir / "retired-keys.json")
    archived = data_dir / f"retired-{old.key_id}.pem"
    key_path.replace(archived)
    prune_retired(data_dir, keep={r.jwk["kid"] for r in retired})
    new = _load_local(algorithm, key_path)
    return old.key_id, new.key_id


def prune_retired(data_dir: Path, *, keep: set[str]) -> list[str]:
    """Delete archived private keys (``retired-<kid>.pem``) whose overlap has ended: only the public half
    of a retired key is ever needed (published until its tokens expire), never the private one after it.
    Returns the kids deleted."""
    deleted = []
    for path in data_dir.glob("retired-*.pem"):
        kid = path.name[len("retired-") : -len(".pem")]
        if kid not in keep:
            path.unlink(missing_ok=True)
            deleted.append(kid)
    return sorted(deleted)
