"""The federation token profile and its per-audience configuration (docs/federation.md).

A federation token is what the broker hands a cloud's token service (AWS STS ``AssumeRoleWithWebIdentity``,
Google STS via a workload identity pool, Microsoft Entra federated credentials) in exchange for a broker EAR
token (RFC 8693; the exchange itself is ``Broker.exchange``). The clouds read only flat claims, so the
profile is flat: ``iss``, ``sub``, a single-string ``aud``, integer ``iat``/``nbf``/``exp``, ``jti``,
``ear_status``, ``tee``, ``platform``, ``measurement``, ``policy`` (the matched appraisal policy id),
``policy_name``, ``dbgstat``, ``tcb_status``, ``instance_<fact>`` for each scalar instance fact, ``eat_nonce``
when the evidence was nonce-bound, ``cnf`` when it binds a key, and for AWS audiences the session-tag claim
``https://aws.amazon.com/tags`` (AWS STS "Passing session tags using AssumeRoleWithWebIdentity": principal
tags as single-value lists, values ≤ 256 characters, ≤ 50 tags). No ``submods`` and no evidence.

``sub`` is a stable, low-cardinality name of what was trusted — by default the matched policy's name — never
an instance id: Entra allows 20 federated credentials per identity, each matching one exact ``sub``, and
Google caps ``google.subject`` at 127 bytes.

Configuration: ``BROKER_FEDERATION_AUDIENCES`` (comma-separated) allows audiences with defaults chosen from the
audience string (RS256 for ``api://AzureADTokenExchange*``, session tags for ``sts.amazonaws.com``);
``BROKER_FEDERATION_CONFIG`` (inline JSON or a file path) adds or overrides per audience::

    {"audiences": {"<audience>": {"cloud": "aws|gcp|azure|generic", "algorithm": "RS256|ES256",
                                  "sub": "{policy_name}", "ttl_seconds": 900,
                                  "tags": ["ear_status", "tee", "platform", "policy"],
                                  "transitive_tags": []}}}

Nothing is allowed by default.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from attestation_broker.config import Settings
from attestation_broker.errors import (
    CONFIG_INVALID,
    FEDERATION_AUDIENCE_NOT_ALLOWED,
    FEDERATION_CLAIM_LIMIT,
    FEDERATION_SUBJECT_REFUSED,
)
from attestation_broker.token.signers import ALGORITHMS, ES256, RS256

AWS_TAGS_CLAIM = "https://aws.amazon.com/tags"
CLOUDS = ("aws", "gcp", "azure", "generic")
# Accepted results: the issuance contract gives a credential only for what the named policy accepts.
ACCEPTED_STATUSES = ("affirming", "warning")
# Cloud limits the profile is held to (conformance tests encode the same numbers from the clouds' docs).
MAX_SUB_BYTES = 127  # Google: google.subject ≤ 127 bytes
MAX_TOKEN_BYTES = 2048  # the profile's own ceiling; AWS accepts ≤ 20,000 characters, Google maps ≤ 8 KB
AWS_MAX_TAGS = 50
AWS_MAX_TAG_VALUE = 256
AWS_MAX_TAG_KEY = 128
DEFAULT_TTL_SECONDS = 900
MAX_TTL_SECONDS = 3600
# Claims a sub template or a tag may name.
FIELDS = ("policy_name", "policy", "ear_status", "tee", "platform", "measurement", "kind", "dbgstat", "tcb_status")
DEFAULT_TAGS = ("ear_status", "tee", "platform", "policy")
_TEMPLATE_FIELD = re.compile(r"\{([a-z_]+)\}")
# AWS tag characters: letters, digits, spaces and _ . : / = + - @
_AWS_TAG_TEXT = re.compile(r"^[\w .:/=+\-@]*$")


@dataclass(frozen=True)
class AudienceRule:
    audience: str
    cloud: str
    algorithm: str
    sub_template: str = "{policy_name}"
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    tags: tuple[str, ...] = ()
    transitive_tags: tuple[str, ...] = ()


def cloud_of(audience: str) -> str:
    if audience.startswith("api://AzureADTokenExchange"):
        return "azure"
    if audience == "sts.amazonaws.com":
        return "aws"
    if audience.startswith(("https://iam.googleapis.com/", "//iam.googleapis.com/")):
        return "gcp"
    return "generic"


def default_rule(audience: str, cloud: str | None = None) -> AudienceRule:
    cloud = cloud or cloud_of(audience)
    # Entra accepts RS256 only (AADSTS5002738 for ES256); AWS and Google accept both.
    algorithm = RS256 if cloud == "azure" else ES256
    return AudienceRule(audience, cloud, algorithm, tags=DEFAULT_TAGS if cloud == "aws" else ())


def _str_list(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CONFIG_INVALID(f"federation config: {name} must be a list of strings")
    return tuple(value)


def _rule(audience: str, spec: Any) -> AudienceRule:
    if not isinstance(spec, dict):
        raise CONFIG_INVALID("federation config: each audience maps to an object")
    unknown = set(spec) - {"cloud", "algorithm", "sub", "ttl_seconds", "tags", "transitive_tags"}
    if unknown:
        raise CONFIG_INVALID(f"federation config: unknown keys {', '.join(sorted(unknown))}")
    cloud = spec.get("cloud", cloud_of(audience))
    if cloud not in CLOUDS:
        raise CONFIG_INVALID(f"federation config: cloud must be one of {', '.join(CLOUDS)}")
    base = default_rule(audience, cloud)
    algorithm = spec.get("algorithm", base.algorithm)
    if algorithm not in ALGORITHMS:
        raise CONFIG_INVALID(f"federation config: algorithm must be one of {', '.join(ALGORITHMS)}")
    if cloud == "azure" and algorithm != RS256:
        raise CONFIG_INVALID("federation config: Microsoft Entra accepts RS256 only")
    sub = spec.get("sub", base.sub_template)
    if not isinstance(sub, str) or not sub:
        raise CONFIG_INVALID("federation config: sub must be a non-empty template string")
    for name in _TEMPLATE_FIELD.findall(sub):
        if name not in FIELDS:
            raise CONFIG_INVALID(f"federation config: sub names unknown field {name}")
    ttl = spec.get("ttl_seconds", base.ttl_seconds)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 60 <= ttl <= MAX_TTL_SECONDS:
        raise CONFIG_INVALID(f"federation config: ttl_seconds must be an integer in 60..{MAX_TTL_SECONDS}")
    tags = _str_list(spec.get("tags", list(base.tags)), "tags")
    transitive = _str_list(spec.get("transitive_tags", []), "transitive_tags")
    if tags and cloud != "aws":
        raise CONFIG_INVALID("federation config: session tags are an AWS feature (cloud: aws)")
    if len(tags) > AWS_MAX_TAGS or any(t not in FIELDS for t in tags) or not set(transitive) <= set(tags):
        raise CONFIG_INVALID(
            f"federation config: tags are ≤ {AWS_MAX_TAGS} of {', '.join(FIELDS)}; transitive_tags ⊆ tags"
        )
    return AudienceRule(audience, cloud, algorithm, sub, ttl, tags, transitive)


def _config_doc(value: str) -> Mapping[str, Any]:
    text = value.strip()
    if not text:
        return {}
    try:
        raw = text if text.startswith("{") else Path(text).read_text()
        doc = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise CONFIG_INVALID(f"BROKER_FEDERATION_CONFIG unreadable: {type(exc).__name__}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("audiences", {}), dict) or set(doc) - {"audiences"}:
        raise CONFIG_INVALID('BROKER_FEDERATION_CONFIG must be {"audiences": {"<audience>": {...}}}')
    return doc


@dataclass(frozen=True)
class FederationConfig:
    rules: Mapping[str, AudienceRule]

    @classmethod
    def from_settings(cls, settings: Settings) -> FederationConfig:
        rules = {a: default_rule(a) for a in settings.federation_audiences}
        for audience, spec in _config_doc(settings.federation_config).get("audiences", {}).items():
            if not audience:
                raise CONFIG_INVALID("federation config: empty audience")
            rules[audience] = _rule(audience, spec)
        return cls(rules)

    @property
    def algorithms(self) -> frozenset[str]:
        return frozenset(r.algorithm for r in self.rules.values())

    def rule(self, audience: str) -> AudienceRule:
        found = self.rules.get(audience)
        if found is None:
            raise FEDERATION_AUDIENCE_NOT_ALLOWED("the audience is not allowed for token exchange")
        return found


def policy_name(policy_id: str) -> str:
    """``<name>@sha256:<hex>`` → ``<name>``; an id without a digest is its own name."""
    name, sep, digest = policy_id.rpartition("@sha256:")
    return name if sep and name and digest else policy_id


def _primary(subject: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The (kind, submodule) the subject token's result rests on: the submodule of the evidence kind the EAR
    ``sub`` names (``<kind>:...``) — in a composite CPU + GPU token that is the CPU's, not ``nvidia-gpu-<n>``,
    whatever the (sorted) key order — else the first. The overall ``ear_status`` covers every submodule."""
    submods = subject.get("submods")
    if not isinstance(submods, dict) or not submods:
        raise FEDERATION_SUBJECT_REFUSED("the subject token is not a broker EAR token")
    named = str(subject.get("sub", "")).partition(":")[0]
    kind = named if named in submods else next(iter(submods))
    submod = submods[kind]
    if not isinstance(submod, dict):
        raise FEDERATION_SUBJECT_REFUSED("the subject token is not a broker EAR token")
    return str(kind), submod


def primary_kind(subject: Mapping[str, Any]) -> str:
    return _primary(subject)[0]


def facts_of(subject: Mapping[str, Any]) -> dict[str, str]:
    """The flat, string-valued facts a sub template, the claims and the tags are built from.

    Refuses (invalid_grant) any result the named policy did not accept: the overall and the primary
    submodule's ``ear_status`` must both be affirming or warning, and one policy id must be named."""
    kind, submod = _primary(subject)
    status = subject.get("ear_status")
    if status not in ACCEPTED_STATUSES or submod.get("ear_status") not in ACCEPTED_STATUSES:
        raise FEDERATION_SUBJECT_REFUSED(f"the appraisal is {status!s}, not affirming or warning")
    policies = submod.get("ear_appraisal_policy_ids")
    if not isinstance(policies, list) or not policies or not isinstance(policies[0], str) or not policies[0]:
        raise FEDERATION_SUBJECT_REFUSED("the subject token names no appraisal policy")
    attester = submod.get("ear_attester_claims")
    attester = attester if isinstance(attester, dict) else {}
    facts = {"kind": kind, "ear_status": str(status), "policy": policies[0], "policy_name": policy_name(policies[0])}
    for key in ("tee", "platform", "measurement", "dbgstat"):
        if isinstance(attester.get(key), str) and attester[key]:
            facts[key] = attester[key]
    tcb = attester.get("tcb")
    if isinstance(tcb, dict) and isinstance(tcb.get("status"), str):
        facts["tcb_status"] = tcb["status"]
    return facts


def _instance_claims(subject: Mapping[str, Any]) -> dict[str, Any]:
    _, submod = _primary(subject)
    attester = submod.get("ear_attester_claims")
    instance = attester.get("instance") if isinstance(attester, dict) else None
    if not isinstance(instance, dict):
        return {}
    return {
        f"instance_{key}": value
        for key, value in sorted(instance.items())
        if isinstance(key, str)
        and key.isidentifier()
        and isinstance(value, str | int)
        and not isinstance(value, bool)
        and len(str(value)) <= AWS_MAX_TAG_VALUE
    }


def render_sub(template: str, facts: Mapping[str, str]) -> str:
    """Substitute ``{field}`` names (no format-string attribute access); a missing field is a config error."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in facts:
            raise FEDERATION_CLAIM_LIMIT(f"sub template names {name}, which this result does not have")
        return facts[name]

    sub = _TEMPLATE_FIELD.sub(one, template)
    if not sub or len(sub.encode()) > MAX_SUB_BYTES:
        raise FEDERATION_CLAIM_LIMIT(f"sub must be 1..{MAX_SUB_BYTES} bytes")
    return sub


def aws_tags(rule: AudienceRule, facts: Mapping[str, str]) -> dict[str, Any]:
    principal: dict[str, list[str]] = {}
    for key in rule.tags:
        value = facts.get(key)
        if value is None:
            continue
        if len(value) > AWS_MAX_TAG_VALUE or not _AWS_TAG_TEXT.match(value):
            raise FEDERATION_CLAIM_LIMIT(f"tag {key} is not a valid AWS session tag value")
        principal[key] = [value]
    doc: dict[str, Any] = {"principal_tags": principal}
    transitive = [k for k in rule.transitive_tags if k in principal]
    if transitive:
        doc["transitive_tag_keys"] = transitive
    return doc


def federation_claims(subject: Mapping[str, Any], rule: AudienceRule, *, issuer: str, now: datetime) -> dict[str, Any]:
    """The flat claims of a federation token for ``rule.audience`` from a verified subject (EAR) token."""
    facts = facts_of(subject)
    iat = int(now.timestamp())
    # Never outlive the evidence appraisal it rests on.
    exp = min(iat + rule.ttl_seconds, int(subject["exp"]))
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": render_sub(rule.sub_template, facts),
        "aud": rule.audience,
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "jti": uuid.uuid4().hex,
    }
    for key in ("ear_status", "tee", "platform", "measurement", "policy", "policy_name", "dbgstat", "tcb_status"):
        if key in facts:
            claims[key] = facts[key]
    claims.update(_instance_claims(subject))
    if isinstance(subject.get("eat_nonce"), str):
        claims["eat_nonce"] = subject["eat_nonce"]
    if isinstance(subject.get("cnf"), dict):
        claims["cnf"] = dict(subject["cnf"])
    if rule.tags:
        claims[AWS_TAGS_CLAIM] = aws_tags(rule, facts)
    return claims
