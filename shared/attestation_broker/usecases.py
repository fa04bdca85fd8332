"""The broker's use cases, independent of HTTP: challenge, attest, verify a token, publish keys.

Every attestation decision — success, verification failure, policy failure, bad input or internal
error — emits exactly one :class:`~attestation_broker.audit.record.DecisionRecord` through the configured sink.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from importlib import resources
from typing import Any

from attestation_broker import revocation
from attestation_broker.api.envelope import Envelope
from attestation_broker.audit.record import DecisionRecord, summarize
from attestation_broker.audit.sinks import Sink
from attestation_broker.binding import ExpectedBinding
from attestation_broker.config import Settings
from attestation_broker.errors import INTERNAL_ERROR, NONCE_REQUIRED, BrokerError
from attestation_broker.nonce import NonceService
from attestation_broker.registry import Registry
from attestation_broker.token.issuer import TokenService
from attestation_broker.trust.cache import CollateralCache
from attestation_broker.verifier import Submission, VerifyContext

log = logging.getLogger("attestation_broker")


@dataclass(frozen=True)
class RequestMeta:
    correlation_id: str
    route: str
    method: str = "POST"
    user_agent: str | None = None
    remote_ip: str | None = None
    trace: str | None = None


@dataclass(frozen=True)
class AttestResult:
    token: str
    claims: Mapping[str, Any]


class Broker:
    def __init__(
        self,
        *,
        settings: Settings,
        registry: Registry,
        nonces: NonceService,
        tokens: TokenService,
        collateral: CollateralCache,
        sink: Sink,
        policy: Mapping[str, Any],
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.nonces = nonces
        self.tokens = tokens
        self.collateral = collateral
        self.sink = sink
        self.policy = policy
        self.clock = clock

    # --- challenge ---------------------------------------------------------------------------
    def challenge(self) -> dict[str, str]:
        nonce = self.nonces.issue(self.clock())
        return {"nonce": nonce.value, "expires_at": nonce.expires_at.isoformat().replace("+00:00", "Z")}

    # --- attest ------------------------------------------------------------------------------
    def attest(
        self, kind: str, envelope: Envelope, meta: RequestMeta, *, offline_binding: ExpectedBinding | None = None
    ) -> AttestResult:
        """Verify, appraise, sign. ``offline_binding`` is for the CLI only: a nonce the operator vouches for."""
        started = time.perf_counter()
        digest = hashlib.sha256(envelope.evidence).hexdigest()
        record: dict[str, Any] = {"kind": kind, "evidence_sha256": digest}
        try:
            verifier = self.registry.require(kind)
            now = self.clock()
            binding = offline_binding or self._binding(envelope, now)
            submission = Submission(envelope.evidence, envelope.extras, envelope.fields, binding)
            ctx = VerifyContext(
                now=now, collateral=self.collateral, settings=self.settings, policy=self.policy.get(kind, {})
            )
            appraisal = verifier.verify(submission, ctx)
            if revocation.skipped(self.settings):
                appraisal = revocation.cap(appraisal)
            claims = self.tokens.claims_for(
                appraisal, evidence_sha256=digest, now=now, nonce=binding.nonce if binding else None
            )
            token = self.tokens.sign(claims)
            record.update(
                verdict=appraisal.status.value,
                claims_summary=summarize(appraisal.attester_claims),
                token_jti=claims["jti"],
                collateral=tuple(appraisal.verifier_claims.get("collateral", ())),
                policy_ids=appraisal.policy_ids,
            )
            return AttestResult(token, claims)
        except BrokerError as exc:
            record.update(verdict="error", error_code=exc.code.name, http_status=exc.status)
            raise
        except Exception as exc:  # noqa: BLE001 - any verifier bug becomes an audited INTERNAL_ERROR
            # Never leak internals to the client; the type name is logged for operators.
            log.error("internal error during attestation: %s", type(exc).__name__)
            record.update(verdict="error", error_code=INTERNAL_ERROR.name, http_status=500)
            raise INTERNAL_ERROR() from None
        finally:
            self._emit(meta, started, record)

    def _binding(self, envelope: Envelope, now: datetime) -> ExpectedBinding | None:
        """Check (and consume) the broker nonce the request names; None when it names none."""
        if envelope.nonce is not None:
            nonce = self.nonces.check(envelope.nonce, now)
            return ExpectedBinding(nonce.raw, envelope.user_data)
        if self.settings.require_nonce:
            raise NONCE_REQUIRED()
        return None

    # --- verify a broker token ---------------------------------------------------------------
    def verify_token(self, token: str, meta: RequestMeta, *, audience: str | None = None) -> dict[str, Any]:
        started = time.perf_counter()
        record: dict[str, Any] = {"kind": None}
        try:
            claims = self.tokens.verify(token, now=self.clock(), audience=audience)
            record.update(verdict=str(claims.get("ear_status", "none")), token_jti=claims.get("jti"))
            return claims
        except BrokerError as exc:
            record.update(verdict="error", error_code=exc.code.name, http_status=exc.status)
            raise
        finally:
            self._emit(meta, started, record)

    def _emit(self, meta: RequestMeta, started: float, fields: dict[str, Any]) -> None:
        record = DecisionRecord(
            correlation_id=meta.correlation_id,
            route=meta.route,
            method=meta.method,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            user_agent=meta.user_agent,
            remote_ip=meta.remote_ip,
            trace=meta.trace,
            **fields,
        )
        self.sink.emit(record)

    # --- published documents -----------------------------------------------------------------
    def jwks(self) -> dict[str, Any]:
        return self.tokens.keyring.jwks(self.clock())

    def discovery(self) -> dict[str, Any]:
        issuer = self.settings.issuer.rstrip("/")
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/jwks",
            "id_token_signing_alg_values_supported": [self.tokens.keyring.active.algorithm],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "claims_supported": sorted(self.schema["properties"]),
            "scopes_supported": ["openid"],
        }

    @cached_property
    def schema(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(
            resources.files("attestation_broker.token").joinpath("schema.json").read_text()
        )
        return loaded

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "kinds": list(self.registry)}


def token_lifetime(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.token_ttl_seconds)
