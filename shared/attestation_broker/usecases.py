"""The broker's use cases, independent of HTTP: challenge, attest, verify a token, publish keys.

The issuance contract (docs/policy.md "Issuance contract") is enforced here, in one place, for every
evidence kind: after the kind's verifier returns an appraisal, the policy engine evaluates the operator's
policy for that kind (or the kind's built-in default); a token is signed only when no rule failed and the
result is affirming or warning. Anything else is 403 ``POLICY_REJECTED`` carrying the failed rules and the
claims that would have been signed — unless the operator opted into EAR-style contraindicated tokens
(``BROKER_ISSUE_CONTRAINDICATED``).

Every attestation decision — success, verification failure, policy failure, bad input or internal
error — emits exactly one :class:`~attestation_broker.audit.record.DecisionRecord` through the configured sink.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property
from importlib import resources
from typing import Any

from attestation_broker import composite, revocation
from attestation_broker.api.envelope import Envelope
from attestation_broker.appraisal import Appraisal, EarStatus
from attestation_broker.audit.record import DecisionRecord, evidence_digest, summarize
from attestation_broker.audit.sinks import Sink
from attestation_broker.binding import ExpectedBinding
from attestation_broker.config import Settings
from attestation_broker.errors import (
    FEDERATION_CLAIM_LIMIT,
    INTERNAL_ERROR,
    NONCE_REQUIRED,
    POLICY_REJECTED,
    BrokerError,
    PolicyRejected,
)
from attestation_broker.exchange import TOKEN_TYPE_JWT, ExchangeRequest, parse_request
from attestation_broker.nonce import NonceService
from attestation_broker.policy import Decision, PolicyEngine, PolicySet, RuleResult
from attestation_broker.registry import Registry
from attestation_broker.token.federation import MAX_TOKEN_BYTES as FEDERATION_MAX_BYTES
from attestation_broker.token.federation import FederationConfig, federation_claims, primary_kind
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


@dataclass(frozen=True)
class FederationToken:
    """A token issued by the RFC 8693 exchange (docs/federation.md)."""

    token: str
    claims: Mapping[str, Any]
    issued_token_type: str
    expires_in: int


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
        policies: PolicySet,
        clock: Callable[[], datetime],
        federation: FederationConfig | None = None,
        evidence_clock: Callable[[], datetime] | None = None,
        engine: PolicyEngine | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.nonces = nonces
        self.tokens = tokens
        self.collateral = collateral
        self.sink = sink
        self.policies = policies
        self.engine = engine if engine is not None else PolicyEngine()
        self.clock = clock
        # "Verify as of" (BROKER_FIXED_TIME): evidence, certificates and collateral are judged at this instant,
        # while nonces and tokens keep the real clock, so a relying party's JWT library still accepts the token.
        self.evidence_clock = evidence_clock
        self.federation = federation if federation is not None else FederationConfig({})

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
        digest = evidence_digest(envelope.evidence, envelope.extras, envelope.fields, envelope.user_data)
        record: dict[str, Any] = {"kind": kind, "evidence_sha256": digest}
        try:
            verifier = self.registry.require(kind)
            now = self.clock()
            binding = offline_binding or self._binding(envelope, now)
            cpu_fields, gpu_part = composite.split(kind, envelope.fields)
            submission = Submission(envelope.evidence, envelope.extras, cpu_fields, binding)
            as_of = self.evidence_clock() if self.evidence_clock is not None else now
            ctx = VerifyContext(now=as_of, collateral=self.collateral, settings=self.settings)
            verified = verifier.verify(submission, ctx)
            gpus: list[Appraisal] = []
            if gpu_part is not None:  # composite CPU + GPU: same binding, one submod per device
                gpus = composite.verify_gpus(self.registry, gpu_part, submission, ctx)
            if revocation.skipped(self.settings):
                verified = revocation.cap(verified)
                gpus = [revocation.cap(gpu) for gpu in gpus]
            # Time rules (evidence age, TCB grace periods) judge the evidence as of the same instant.
            nonce_bound = binding is not None
            decision = self.engine.evaluate(self.policies.for_kind(kind), verified, now=as_of, nonce_bound=nonce_bound)
            appraisal, failed = self._contract(decision)
            # Every device of a composite is appraised under the nvidia-gpu policy; one failed rule refuses all.
            gpu_policy = self.policies.for_kind(composite.GPU_KIND)
            gpu_results = [
                self._contract(self.engine.evaluate(gpu_policy, gpu, now=as_of, nonce_bound=nonce_bound))
                for gpu in composite.annotate(gpus)
            ]
            failed = failed + tuple(r for _, rules in gpu_results for r in rules)
            nonce = binding.nonce if binding else None
            claims = self.tokens.claims_for(appraisal, evidence_sha256=digest, now=now, nonce=nonce)
            if gpu_results:
                composite.merge(
                    claims,
                    [self.tokens.claims_for(g, evidence_sha256=digest, now=now, nonce=nonce) for g, _ in gpu_results],
                )
            record.update(
                verdict=appraisal.status.value,
                claims_summary=summarize(appraisal.attester_claims),
                collateral=tuple(appraisal.verifier_claims.get("collateral", ())),
                policy_ids=appraisal.policy_ids,
            )
            if failed and not self.settings.issue_contraindicated:
                claims.pop("jti", None)
                names = ", ".join(r.rule for r in failed)
                raise PolicyRejected(
                    POLICY_REJECTED,
                    f"refused under policy {decision.policy.name}: {names}"[:500],
                    failed_rules=[r.as_dict() for r in failed],
                    appraisal=claims,
                )
            token = self.tokens.sign(claims)
            record.update(token_jti=claims["jti"])
            return AttestResult(token, claims)
        except PolicyRejected as exc:
            # The verdict stays the appraisal's status; the record names the failed rules, not their values.
            record.update(
                error_code=exc.code.name,
                http_status=exc.status,
                failed_rules=tuple(str(r["rule"]) for r in exc.failed_rules),
            )
            exc.audited = True
            raise
        except BrokerError as exc:
            record.update(verdict="error", error_code=exc.code.name, http_status=exc.status)
            exc.audited = True
            raise
        except Exception as exc:  # noqa: BLE001 - any verifier bug becomes an audited INTERNAL_ERROR
            # Never leak internals to the client; the type name is logged for operators.
            log.error("internal error during attestation: %s", type(exc).__name__)
            record.update(verdict="error", error_code=INTERNAL_ERROR.name, http_status=500)
            internal = INTERNAL_ERROR()
            internal.audited = True
            raise internal from None
        finally:
            self._emit(meta, started, record)

    @staticmethod
    def _contract(decision: Decision) -> tuple[Appraisal, tuple[RuleResult, ...]]:
        """The one place that decides whether a result may carry a token: no failed rule, and a status of
        affirming or warning. Returns the appraisal to sign (or show) and the failed rules."""
        appraisal = decision.appraisal
        failed = list(decision.failed)
        if not failed and appraisal.status not in (EarStatus.AFFIRMING, EarStatus.WARNING):
            # Unreachable with the engine's trustworthiness rule; kept so no engine change can issue one.
            failed.append(
                RuleResult(
                    decision.policy.name,
                    "trustworthiness",
                    False,
                    "affirming or warning",
                    appraisal.status.value,
                    "the appraisal is not affirming or warning",
                )
            )
        if failed:
            verifier_claims = {**appraisal.verifier_claims, "policy_failed_rules": [r.rule for r in failed]}
            appraisal = replace(appraisal, verifier_claims=verifier_claims)
        return appraisal, tuple(failed)

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
            exc.audited = True
            raise
        finally:
            self._emit(meta, started, record)

    # --- token exchange (RFC 8693) ------------------------------------------------------------
    def exchange(self, content_type: str, body: bytes, meta: RequestMeta) -> FederationToken:
        """``POST /v1/token``: a verified broker EAR token in, a federation token for one audience out."""
        started = time.perf_counter()
        record: dict[str, Any] = {"kind": None}
        try:
            request = parse_request(content_type, body)
            record["audience"] = request.audience
            self.federation.rule(request.audience)  # invalid_target before any token work
            subject = self.tokens.verify(request.subject_token, now=self.clock())
            return self._federate(subject, request, record)
        except BrokerError as exc:
            record.update(verdict="error", error_code=exc.code.name, http_status=exc.status)
            exc.audited = True
            raise
        finally:
            self._emit(meta, started, record)

    def federate_attested(self, claims: Mapping[str, Any], audience: str, meta: RequestMeta) -> FederationToken:
        """The exchange inside the attest call (one round trip for a CVM): ``claims`` are the just-signed EAR
        claims, so no subject token is parsed; the same refusal rules apply and the decision is audited."""
        started = time.perf_counter()
        record: dict[str, Any] = {"kind": None, "audience": audience}
        try:
            self.federation.rule(audience)
            return self._federate(claims, ExchangeRequest("", audience, TOKEN_TYPE_JWT), record)
        except BrokerError as exc:
            record.update(verdict="error", error_code=exc.code.name, http_status=exc.status)
            exc.audited = True
            raise
        finally:
            self._emit(meta, started, record)

    def _federate(
        self, subject: Mapping[str, Any], request: ExchangeRequest, record: dict[str, Any]
    ) -> FederationToken:
        rule = self.federation.rule(request.audience)
        now = self.clock()
        claims = federation_claims(subject, rule, issuer=self.tokens.issuer, now=now)
        record["kind"] = primary_kind(subject)
        token = self.tokens.sign(claims, algorithm=rule.algorithm)
        if len(token) > FEDERATION_MAX_BYTES:
            raise FEDERATION_CLAIM_LIMIT(f"the federation token exceeds {FEDERATION_MAX_BYTES} bytes")
        record.update(
            verdict=claims["ear_status"],
            token_jti=claims["jti"],
            policy_ids=(claims["policy"],),
            claims_summary={k: claims.get(k) for k in ("tee", "platform", "measurement", "sub")},
        )
        return FederationToken(token, claims, request.requested_token_type, claims["exp"] - int(now.timestamp()))

    def refused(self, meta: RequestMeta, error: BrokerError, *, started: float, kind: str | None = None) -> None:
        """The one record of a request refused before any use case ran (415, unknown kind, bad JSON, 404, ...)."""
        if error.audited:
            return
        error.audited = True
        self._emit(
            meta,
            started,
            {"kind": kind, "verdict": "error", "error_code": error.code.name, "http_status": error.status},
        )

    def issued_challenge(self, meta: RequestMeta, *, started: float) -> None:
        """The record of a challenge: no decision, but every request on a decision route leaves one record."""
        self._emit(meta, started, {"kind": None, "verdict": "none"})

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
            # OpenID Connect Discovery §3: RS256 must be listed; both algorithms sign (docs/federation.md).
            "id_token_signing_alg_values_supported": list(self.tokens.keyring.algorithms),
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
