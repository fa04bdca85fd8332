"""Wiring: build one :class:`~attestation_broker.usecases.Broker` from
:class:`~attestation_broker.config.Settings` at cold start.

Backends are chosen by the settings strings (see ``Settings``); cloud SDKs are imported only when a
backend that needs them is selected, so a local broker never imports boto3 or google-cloud-logging.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from attestation_broker.audit.sinks import CloudLoggingSink, FallbackSink, Sink, StdoutSink
from attestation_broker.config import Settings
from attestation_broker.errors import CONFIG_INVALID
from attestation_broker.files import private_dir
from attestation_broker.ledger import ReplayLedger, SqliteLedger
from attestation_broker.nonce import NonceService
from attestation_broker.policy import PolicyEngine, PolicySet, RecordedTcbCurrency, TcbCurrency, load_policy_set
from attestation_broker.registry import Registry, default_registry
from attestation_broker.token.federation import FederationConfig
from attestation_broker.token.issuer import TokenService
from attestation_broker.token.keys import KeyRing, Retired, RetiredSigner, local_keyring, local_rsa_signer
from attestation_broker.token.signers import ES256, RS256, Signer
from attestation_broker.trust.bundle import Bundle
from attestation_broker.trust.cache import BlobStore, CollateralCache, DirectoryStore
from attestation_broker.trust.currency import TcbCurrency as RecordedLevels
from attestation_broker.trust.fetch import Fetcher, HttpFetcher, OfflineFetcher
from attestation_broker.trust.upstreams import build_fetcher
from attestation_broker.usecases import Broker


def utc_now() -> datetime:
    return datetime.now(UTC)


def prepare_data_dir(settings: Settings) -> None:
    """Create the local signing key and nonce secret (when those are local) before several processes read them."""
    if _split(settings.signer)[0] == "local":
        local_keyring(settings.data_dir)
    if not settings.nonce_secret.strip() and _split(settings.ledger)[0] != "dynamodb":
        nonce_secret(settings)


def _split(spec: str) -> tuple[str, str]:
    kind, _, arg = spec.partition(":")
    return kind.strip().lower(), arg.strip()


def _secret_file(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes()
    private_dir(path.parent)
    secret = os.urandom(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it first: everyone must use that one.
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret


def nonce_secret(settings: Settings) -> bytes:
    value = settings.nonce_secret.strip()
    if value:
        try:
            secret = bytes.fromhex(value)
        except ValueError:
            try:
                secret = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise CONFIG_INVALID("BROKER_NONCE_SECRET must be hex or base64") from None
        if len(secret) < 32:
            raise CONFIG_INVALID("BROKER_NONCE_SECRET must be at least 32 bytes")
        return secret
    if _split(settings.ledger)[0] == "dynamodb" or _split(settings.signer)[0] == "kms":
        # Several instances must share one MAC key, so a per-instance random key would break nonces.
        raise CONFIG_INVALID("BROKER_NONCE_SECRET is required when running distributed (kms/dynamodb)")
    return _secret_file(settings.data_dir / "nonce-secret")


def build_rsa_signer(settings: Settings) -> Signer | None:
    """The RS256 signer for federation audiences (BROKER_SIGNER_RS256; see Settings)."""
    kind = _split(settings.signer_rs256)[0] or ("local" if _split(settings.signer)[0] == "local" else "off")
    if kind == "off":
        return None
    if kind == "local":
        return local_rsa_signer(settings.data_dir)
    if kind == "kms":
        from attestation_broker.aws.factory import signer_from_uri

        return signer_from_uri(settings.signer_rs256, RS256)
    raise CONFIG_INVALID(f"unknown RS256 signer {settings.signer_rs256!r}")


def retired_kms_keys(settings: Settings) -> tuple[RetiredSigner, ...]:
    """``retired_signers`` / ``retired_signers_rs256``: ``kms:<key>@<published_until>`` entries (docs/deploy.md
    "Rotating the KMS signing keys"). Malformed entries stop the start (CONFIG_INVALID), never a caller's request."""
    out: list[RetiredSigner] = []
    for algorithm, name, entries in (
        (ES256, "BROKER_RETIRED_SIGNERS", settings.retired_signers),
        (RS256, "BROKER_RETIRED_SIGNERS_RS256", settings.retired_signers_rs256),
    ):
        for entry in entries:
            # "@" never occurs in a KMS key id, ARN or alias name, so it cleanly separates the window.
            key, sep, until = entry.rpartition("@")
            if not sep or _split(key)[0] != "kms" or not _split(key)[1]:
                raise CONFIG_INVALID(f"{name} entries must be kms:<key id|ARN|alias>@<ISO 8601 instant>")
            try:
                published_until = datetime.fromisoformat(until.strip().replace("Z", "+00:00"))
            except ValueError:
                raise CONFIG_INVALID(f"{name}: {until.strip()!r} is not an ISO 8601 instant") from None
            if published_until.tzinfo is None:
                published_until = published_until.replace(tzinfo=UTC)
            from attestation_broker.aws.factory import signer_from_uri

            out.append(RetiredSigner(signer_from_uri(key.strip(), algorithm), published_until))
    return tuple(out)


def build_keyring(settings: Settings) -> KeyRing:
    kind = _split(settings.signer)[0]
    rsa = build_rsa_signer(settings)
    extra = (rsa,) if rsa is not None else ()
    kms_retired: tuple[Retired, ...] = retired_kms_keys(settings)
    if kind == "local":
        ring = local_keyring(settings.data_dir, rsa=False)
        return KeyRing(ring.active, (*ring.retired, *kms_retired), extra=extra)
    if kind == "kms":
        from attestation_broker.aws.factory import signer_from_uri

        return KeyRing(signer_from_uri(settings.signer), kms_retired, extra=extra)
    raise CONFIG_INVALID(f"unknown signer {settings.signer!r}")


def build_ledger(settings: Settings) -> ReplayLedger | None:
    kind, arg = _split(settings.ledger)
    if not settings.replay_ledger or kind == "off":
        return None
    if kind == "sqlite":
        return SqliteLedger(Path(arg) if arg else settings.data_dir / "replay-ledger.sqlite3")
    if kind == "dynamodb":
        from attestation_broker.aws.factory import ledger_from_uri

        return ledger_from_uri(settings.ledger)
    raise CONFIG_INVALID(f"unknown ledger {settings.ledger!r}")


def build_store(settings: Settings) -> BlobStore | None:
    kind, arg = _split(settings.cache)
    if kind == "memory":
        return None
    if kind == "local":
        return DirectoryStore(Path(arg) if arg else settings.data_dir / "collateral")
    if kind == "s3":
        from attestation_broker.aws.factory import store_from_uri

        return store_from_uri(settings.cache)
    raise CONFIG_INVALID(f"unknown cache {settings.cache!r}")


def build_sink(settings: Settings) -> Sink:
    kind, arg = _split(settings.audit)
    if kind == "stdout":
        return StdoutSink()
    if kind == "cloud-logging" and arg:
        return FallbackSink(CloudLoggingSink(project=arg), StdoutSink())
    raise CONFIG_INVALID(f"unknown audit sink {settings.audit!r}")


def fixed_evidence_clock(settings: Settings) -> Callable[[], datetime] | None:
    """``BROKER_FIXED_TIME``: the instant evidence is verified as of (tokens and nonces keep the real clock)."""
    if not settings.fixed_time:
        return None
    try:
        pinned = datetime.fromisoformat(settings.fixed_time.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CONFIG_INVALID("BROKER_FIXED_TIME must be an ISO 8601 instant") from None
    pinned = pinned if pinned.tzinfo else pinned.replace(tzinfo=UTC)
    return lambda: pinned


def build_broker(
    settings: Settings,
    *,
    registry: Registry | None = None,
    keyring: KeyRing | None = None,
    ledger: ReplayLedger | None = None,
    store: BlobStore | None = None,
    fetcher: Fetcher | None = None,
    sink: Sink | None = None,
    policies: PolicySet | None = None,
    tcb_currency: TcbCurrency | None = None,
    clock: Callable[[], datetime] = utc_now,
    federation: FederationConfig | None = None,
    evidence_clock: Callable[[], datetime] | None = None,
) -> Broker:
    """Everything injectable; anything not given is built from ``settings``.

    The policy document is parsed, validated and compiled here, once: a broken document raises
    CONFIG_INVALID listing every problem, so ``serve`` and every Lambda handler refuse to start."""
    registry = registry if registry is not None else default_registry()
    policies = policies if policies is not None else load_policy_set(settings.policy_file, known_kinds=registry)
    nonces = NonceService(
        nonce_secret(settings),
        ttl=timedelta(seconds=settings.nonce_ttl_seconds),
        skew=timedelta(seconds=settings.clock_skew_seconds),
        ledger=ledger if ledger is not None else build_ledger(settings),
    )
    keyring = keyring if keyring is not None else build_keyring(settings)
    federation = federation if federation is not None else FederationConfig.from_settings(settings)
    missing = federation.algorithms - set(keyring.algorithms)
    if missing:
        raise CONFIG_INVALID(f"federation audiences need {', '.join(sorted(missing))} keys (BROKER_SIGNER_RS256)")
    tokens = TokenService(
        keyring,
        issuer=settings.issuer.rstrip("/"),
        audience=settings.token_audience,
        ttl=timedelta(seconds=settings.token_ttl_seconds),
    )
    if fetcher is None:
        fetcher = build_fetcher(settings, OfflineFetcher() if settings.offline else HttpFetcher())
    shared_store = store if store is not None else build_store(settings)
    if tcb_currency is None and shared_store is not None:
        # TCB-recovery grace periods count from when the refresher saw the current level published.
        recorded_in = shared_store
        tcb_currency = RecordedTcbCurrency(lambda: RecordedLevels(recorded_in, emit=lambda _record: None))
    collateral = CollateralCache(
        fetcher,
        shared_store,
        timeout=settings.fetch_timeout_seconds,
        bundle=Bundle.open(Path(settings.collateral_dir)) if settings.collateral_dir else None,
    )
    return Broker(
        settings=settings,
        registry=registry,
        nonces=nonces,
        tokens=tokens,
        collateral=collateral,
        sink=sink if sink is not None else build_sink(settings),
        policies=policies,
        engine=PolicyEngine(tcb_currency=tcb_currency),
        clock=clock,
        federation=federation,
        evidence_clock=evidence_clock if evidence_clock is not None else fixed_evidence_clock(settings),
    )
