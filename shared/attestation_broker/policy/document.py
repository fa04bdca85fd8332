"""The policy document: named policies in YAML or JSON, validated against the published JSON Schema
(``schema.json``, served at ``GET /v1/policy-schema``) and compiled once at start (docs/policy.md).

A document that does not validate is a configuration error listing *every* problem with the valid keys
named (``attestation-broker policy check`` prints the same list); the server and every Lambda handler
refuse to start with it. Evidence kinds the operator names no policy for get the built-in default policy
shipped as ``policy/defaults/<kind>.yaml``, written in the same language.

Policy id: ``<name>@sha256:<first 32 hex of SHA-256 over the canonical JSON (sorted keys, no spaces) of
that one policy>`` — two different policies never share an id, and the name is the part before ``@``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from attestation_broker.errors import CONFIG_INVALID
from attestation_broker.policy.cel import CelCompileError, Condition

if TYPE_CHECKING:
    import jsonschema


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        resources.files("attestation_broker.policy").joinpath("schema.json").read_text()
    )
    return loaded


class PolicyDocumentError(ValueError):
    """Every problem found in a document, each a line ``<where>: <what>``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def policy_id(name: str, body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return f"{name}@sha256:{hashlib.sha256(canonical).hexdigest()[:32]}"


@dataclass(frozen=True)
class ReferenceValue:
    label: str
    claims: Mapping[str, Any]


@dataclass(frozen=True)
class TcbRecovery:
    grace_days: int | None = None
    min_tcb_date: datetime | None = None
    accepted_advisories: frozenset[str] | None = None


@dataclass(frozen=True)
class Policy:
    """One compiled policy. ``rules`` keeps the document's rule objects for display (``policy test``)."""

    name: str
    id: str
    kinds: tuple[str, ...]
    rules: Mapping[str, Any]
    builtin: bool = False
    reference_values: tuple[ReferenceValue, ...] = ()
    debug_allowed: bool = False
    min_tcb_status: str | None = None
    tcb_minimums: Mapping[str, int] = field(default_factory=dict)
    tcb_recovery: TcbRecovery | None = None
    nonce_required: bool = False
    ak_keys: Mapping[str, str] = field(default_factory=dict)  # sha256 (lowercase) -> label
    claim_constraints: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    max_evidence_age_seconds: int | None = None
    conditions: tuple[Condition, ...] = ()


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _date(text: str) -> datetime:
    if "T" in text:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)


def compile_policy(name: str, body: Mapping[str, Any], *, builtin: bool = False) -> Policy:
    """Compile one schema-valid policy; raise PolicyDocumentError for problems the schema cannot see."""
    rules: Mapping[str, Any] = body["rules"]
    problems: list[str] = []
    conditions = []
    for index, item in enumerate(rules.get("conditions", ())):
        try:
            conditions.append(Condition.compile(item["name"], item["expr"]))
        except CelCompileError as exc:
            problems.append(f"policies.{name}.rules.conditions[{index}] ({item['name']}): {exc}")
    recovery = None
    if "tcb_recovery" in rules:
        raw = rules["tcb_recovery"]
        try:
            min_date = _date(raw["min_tcb_date"]) if "min_tcb_date" in raw else None
        except ValueError:
            problems.append(f"policies.{name}.rules.tcb_recovery.min_tcb_date: not a calendar date")
            min_date = None
        advisories = raw.get("accepted_advisories")
        recovery = TcbRecovery(
            raw.get("grace_days"), min_date, frozenset(advisories) if advisories is not None else None
        )
    if problems:
        raise PolicyDocumentError(name, problems)
    return Policy(
        name=name,
        id=policy_id(name, body),
        kinds=tuple(body["kinds"]),
        rules=rules,
        builtin=builtin,
        reference_values=tuple(
            ReferenceValue(rv["label"], {k: _norm(v) for k, v in rv["claims"].items()})
            for rv in rules.get("reference_values", ())
        ),
        debug_allowed=rules.get("debug", "forbidden") == "allowed",
        min_tcb_status=rules.get("min_tcb_status"),
        tcb_minimums=dict(rules.get("tcb_minimums", {})),
        tcb_recovery=recovery,
        nonce_required=rules.get("nonce", "optional") == "required",
        ak_keys={k["sha256"].lower(): k["label"] for k in rules.get("ak_keys", ())},
        claim_constraints={path: tuple(_norm(v) for v in values) for path, values in rules.get("claims", {}).items()},
        max_evidence_age_seconds=rules.get("max_evidence_age_seconds"),
        conditions=tuple(conditions),
    )


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(document)"


def _explain(error: jsonschema.ValidationError) -> str:
    """One readable line per schema error, naming the valid keys where a key is unknown."""
    where = _where(error)
    sub_schema: Any = error.schema
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = sorted(sub_schema.get("properties", {}) if isinstance(sub_schema, Mapping) else ())
        unknown = sorted(set(error.instance) - set(allowed))
        return f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(allowed)}"
    values: Any = error.validator_value
    if error.validator == "enum":
        return f"{where}: {error.instance!r} is not one of {', '.join(map(str, values))}"
    return f"{where}: {error.message}"


def parse_text(text: str, source: str = "policy") -> Any:
    # yaml and jsonschema are imported on first use: a Lambda handler that never reads a policy document (health,
    # challenge, keys) does not pay for them at cold start (about a quarter of the import time).
    import yaml

    try:
        # YAML 1.1 is a superset of JSON for documents like ours; safe_load builds plain data only.
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise PolicyDocumentError(
            source, [f"not YAML or JSON{where}: {getattr(exc, 'problem', None) or exc}"]
        ) from None


def problems_in(doc: Any, known_kinds: Iterable[str] | None = None) -> list[str]:
    """Every problem in a parsed document (empty list: valid): schema errors, unknown or doubly covered
    evidence kinds, and expressions that do not compile — all of them, not the first."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    problems = [_explain(e) for e in errors]
    policies = doc.get("policies") if isinstance(doc, Mapping) else None
    if not isinstance(policies, Mapping):
        return problems
    broken = {str(e.absolute_path[1]) for e in errors if len(e.absolute_path) > 1 and e.absolute_path[0] == "policies"}
    kinds = set(known_kinds) if known_kinds is not None else None
    seen: dict[str, str] = {}
    for name, body in policies.items():
        listed = body.get("kinds") if isinstance(body, Mapping) else None
        for kind in listed if isinstance(listed, list) else ():
            if not isinstance(kind, str):
                continue
            if kinds is not None and kind not in kinds:
                problems.append(
                    f"policies.{name}.kinds: unknown evidence kind {kind!r}; valid: {', '.join(sorted(kinds))}"
                )
            elif kind in seen:
                problems.append(f"policies.{name}.kinds: {kind} is already covered by policy {seen[kind]}")
            else:
                seen[kind] = name
        if name in broken:
            continue
        try:
            compile_policy(name, body)
        except PolicyDocumentError as exc:
            problems.extend(exc.problems)
    return problems


@dataclass(frozen=True)
class PolicySet:
    """The operator's policies by kind, with the built-in defaults for every other kind."""

    by_kind: Mapping[str, Policy]
    source: str = "built-in defaults"

    def for_kind(self, kind: str) -> Policy:
        policy = self.by_kind.get(kind)
        return policy if policy is not None else default_policy(kind)


@cache
def default_policy(kind: str) -> Policy:
    """The built-in default for ``kind`` (``policy/defaults/<kind>.yaml``); kinds without a file get the
    generic default (debug forbidden, nothing else)."""
    files = resources.files("attestation_broker.policy").joinpath("defaults")
    path = files.joinpath(f"{kind}.yaml")
    own = path.is_file()
    text = path.read_text() if own else files.joinpath("generic.yaml").read_text()
    doc = parse_text(text, f"defaults/{kind}.yaml")
    problems = problems_in(doc)
    if problems:
        raise RuntimeError(f"built-in default policy for {kind} is invalid: {problems}")
    name, body = next(iter(doc["policies"].items()))
    if not own:
        name, body = f"{kind}-default", {**body, "kinds": [kind]}
    return compile_policy(name, body, builtin=True)


def load_document(text: str, source: str, known_kinds: Iterable[str] | None = None) -> PolicySet:
    """Parse, validate and compile; raise PolicyDocumentError with every problem."""
    doc = parse_text(text, source)
    problems = problems_in(doc, known_kinds)
    if problems:
        raise PolicyDocumentError(source, problems)
    by_kind: dict[str, Policy] = {}
    for name, body in doc["policies"].items():
        compiled = compile_policy(name, body)
        for kind in compiled.kinds:
            by_kind[kind] = compiled
    return PolicySet(by_kind, source)


def load_policy_set(path: str, known_kinds: Iterable[str] | None = None) -> PolicySet:
    """For bootstrap: the operator's file (or only the defaults); any problem is CONFIG_INVALID."""
    if not path:
        return PolicySet({})
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CONFIG_INVALID(f"policy file {path} unreadable: {type(exc).__name__}") from None
    try:
        return load_document(text, path, known_kinds)
    except PolicyDocumentError as exc:
        raise CONFIG_INVALID(f"policy file {path} is invalid: " + "; ".join(exc.problems)[:2000]) from None
