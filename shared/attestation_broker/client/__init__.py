"""The guest side of the broker: collect evidence inside a confidential VM, bind the broker nonce, get a
verified token (docs/client.md; CLI ``attestation-broker attest``).

::

    from attestation_broker.client import AttestOptions, attest
    result = attest(AttestOptions(broker="https://broker.example", kind="auto"))
    result.token, result.claims["ear_status"]

Steps (issue "the CVM side"): detect the platform (:func:`.collect.detect`), ``POST /v1/challenge``,
compute the binding with :class:`attestation_broker.binding.ExpectedBinding` (the broker's own functions),
collect (:mod:`.collect`: configfs-tsm :mod:`.tsm`, TPM :mod:`.tpm`), ``POST /v1/attest/{kind}``, verify
the token against ``/jwks`` (:func:`.exchange.verify_token`), optionally exchange it (RFC 8693) for an
audience, write it 0600 (:func:`write_token`). :func:`watch` renews before expiry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attestation_broker.binding import ExpectedBinding
from attestation_broker.client.collect import Machine, b64, collect, detect
from attestation_broker.client.errors import CLIENT_OUTPUT_UNWRITABLE
from attestation_broker.client.exchange import BrokerClient, verify_token
from attestation_broker.errors import BrokerError
from attestation_broker.files import atomic_write

__all__ = ["AttestOptions", "AttestResult", "Machine", "attest", "watch", "write_token"]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AttestOptions:
    broker: str
    kind: str = "auto"
    user_data: bytes = b""
    audience: str | None = None
    machine: Machine = field(default_factory=Machine)


@dataclass(frozen=True)
class AttestResult:
    kind: str
    token: str  # the token to use: the exchanged one when an audience was asked for
    claims: Mapping[str, Any]  # the verified claims of the broker's attestation token
    nonce: str
    attestation_token: str
    exchanged: Mapping[str, Any] | None = None

    @property
    def expires_at(self) -> int:
        exp = (self.exchanged or {}).get("exp") or self.claims.get("exp")
        return int(exp) if isinstance(exp, int) else 0

    def summary(self, out: Path | None = None) -> str:
        status = self.claims.get("ear_status", "?")
        exp = datetime.fromtimestamp(self.expires_at, UTC).isoformat().replace("+00:00", "Z")
        parts = [f"attested kind={self.kind}", f"status={status}", f"expires={exp}", f"jti={self.claims.get('jti')}"]
        if self.exchanged is not None:
            parts.append(f"audience={self.exchanged.get('aud')}")
        if out is not None:
            parts.append(f"token={out}")
        return " ".join(parts)


def attest(
    options: AttestOptions, *, client: BrokerClient | None = None, clock: Callable[[], datetime] | None = None
) -> AttestResult:
    """One attestation round trip; raises a typed BrokerError (client codes in :mod:`.errors`)."""
    clock = clock or utc_now
    broker = client or BrokerClient(options.broker)
    kind = detect(options.machine) if options.kind == "auto" else options.kind
    challenge = broker.challenge()
    binding = ExpectedBinding(challenge.nonce, options.user_data)
    envelope = collect(kind, binding, options.machine)
    envelope["nonce"] = challenge.nonce_hex
    if options.user_data:
        envelope["user_data"] = b64(options.user_data)
    issued = broker.attest(kind, envelope)
    jwks = broker.jwks()
    claims = verify_token(issued.token, jwks, now=clock(), nonce_hex=challenge.nonce_hex)
    token, exchanged = issued.token, None
    if options.audience:
        swapped = broker.exchange(issued.token, options.audience)
        exchanged = verify_token(swapped.token, broker.jwks(), now=clock(), nonce_hex=None)
        token = swapped.token
    return AttestResult(kind, token, claims, challenge.nonce_hex, issued.token, exchanged)


def write_token(path: Path, token: str) -> None:
    """Atomically replace ``path`` with ``token``, mode 0600 from creation (never world-readable, not
    even briefly), so a reader during ``--watch`` renewal sees the old or the new token, never half."""
    try:
        atomic_write(path, (token + "\n").encode(), prefix=f".{path.name}.")
    except OSError as exc:
        raise CLIENT_OUTPUT_UNWRITABLE(f"{path}: {exc.strerror}") from None


def renew_delay(result: AttestResult, now: datetime, *, fraction: float = 2 / 3, floor: float = 5.0) -> float:
    """Seconds until the token should be renewed: at ``fraction`` of its lifetime (iat → exp)."""
    iat = result.claims.get("iat")
    start = int(iat) if isinstance(iat, int) else int(now.timestamp())
    at = start + (result.expires_at - start) * fraction
    return max(floor, at - now.timestamp())


def watch(
    run_once: Callable[[], AttestResult],
    on_token: Callable[[AttestResult], None],
    *,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None],
    on_error: Callable[[BrokerError], None] = lambda _exc: None,
    rounds: int | None = None,
    retry_seconds: float = 10.0,
) -> int:
    """Attest, hand the token over, sleep until renewal time, repeat (``rounds`` bounds it; None = forever).

    A failed renewal keeps the current token and retries every ``retry_seconds`` (never past its expiry
    without saying so: each failure goes to ``on_error``). Returns the number of tokens obtained."""
    obtained = 0
    current: AttestResult | None = None
    done = 0
    while rounds is None or done < rounds:
        done += 1
        last = rounds is not None and done >= rounds
        try:
            current = run_once()
        except BrokerError as exc:
            on_error(exc)
            delay = retry_seconds
            if current is not None:
                delay = min(retry_seconds, max(1.0, current.expires_at - clock().timestamp()))
            if not last:
                sleep(delay)
            continue
        obtained += 1
        on_token(current)
        if not last:  # a bounded run ends with its last token, not with a sleep
            sleep(renew_delay(current, clock()))
    return obtained
