"""One input collector for every kind: unknown fields, unrecognized extras and a second candidate for one
role are refused with their own codes before any parsing; one base64 rule."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest
from attestation_broker.errors import BrokerError
from attestation_broker.inputs import InputSpec, decode_base64
from attestation_broker.registry import default_registry
from attestation_broker.verifier import Submission

from tests.fuzz.seeds import KINDS, Seed, seeds
from tests.support.vectors import vector

AZ = "azure/"


def _code(seed_kind: str, submission: Submission, index: int = 0) -> str:
    seed = seeds(seed_kind)[index]
    with pytest.raises(BrokerError) as exc:
        seed.verifier.verify(submission, seed.make_ctx())
    return exc.value.code.name


def test_every_kind_declares_its_inputs() -> None:
    registry = default_registry()
    for kind in KINDS:
        spec = getattr(registry.require(kind), "inputs", None)
        assert isinstance(spec, InputSpec) and spec.kind == kind


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_field_is_refused_for_every_kind(kind: str) -> None:
    seed = seeds(kind)[0]
    sub = replace(seed.submission, fields={**seed.submission.fields, "colateral": {}})
    assert _code(kind, sub) == "INPUT_FIELD_UNKNOWN"


@pytest.mark.parametrize("kind", ["tdx", "nitro", "gcp-token", "azure-token", "nvidia-token"])
def test_kinds_without_extras_refuse_any_extra(kind: str) -> None:
    seed = seeds(kind)[0]
    sub = replace(seed.submission, extras=(vector("nitro/aws-nitro-enclaves-root-g1.pem"),))
    assert _code(kind, sub) == "INPUT_EXTRA_UNRECOGNIZED"


def test_azure_vtpm_second_hcl_report_is_refused_not_used() -> None:
    """The replacement attack: evidence = one HCL report, extra = another; the extra used to be verified."""
    (msg_sig,) = [s for s in seeds("azure-vtpm") if s.name == "azure-vtpm-msg-sig"]
    other_hcl = vector(AZ + "az-snp-hcl-report-911B0EF8.bin")
    assert msg_sig.verifier.verify(msg_sig.submission, msg_sig.make_ctx()).kind == "azure-vtpm"
    replaced = replace(msg_sig.submission, extras=(*msg_sig.submission.extras, other_hcl))
    assert _code("azure-vtpm", replaced, 1) == "INPUT_ROLE_DUPLICATE"
    # trustee JSON evidence (which carries its HCL report) plus an HCL report as an extra
    (v1,) = [s for s in seeds("azure-vtpm") if s.name == "azure-vtpm-v1"]
    assert _code("azure-vtpm", replace(v1.submission, extras=(other_hcl,))) == "INPUT_ROLE_DUPLICATE"
    # HCL report as evidence and again as an envelope field
    fields = {"hcl_report": base64.b64encode(other_hcl).decode()}
    assert _code("azure-vtpm", replace(msg_sig.submission, fields=fields), 1) == "INPUT_ROLE_DUPLICATE"
    # two TPM signatures
    sig = vector(AZ + "az-snp-tpm-quote-D3A9B6BE.sig")
    assert _code("azure-vtpm", replace(msg_sig.submission, extras=(*msg_sig.submission.extras, sig)), 1) == (
        "INPUT_ROLE_DUPLICATE"
    )


def _nvidia(name: str) -> tuple[Seed, Submission]:
    (seed,) = [s for s in seeds("nvidia-gpu") if s.name == name]
    return seed, seed.submission


def test_nvidia_gpu_single_report_chain_comes_once() -> None:
    seed, sub = _nvidia("nvidia-E2")
    chain, *rims = sub.extras
    # the chain as the envelope field instead of an extra verifies the same
    as_field = replace(sub, extras=tuple(rims), fields={"certificate_chain": chain.decode()})
    assert seed.verifier.verify(as_field, seed.make_ctx()).kind == "nvidia-gpu"
    # ... but as both, or twice as an extra, it is a second candidate, never a silent choice
    both = replace(sub, fields={"certificate_chain": chain.decode()})
    assert _code("nvidia-gpu", both) == "INPUT_ROLE_DUPLICATE"
    assert _code("nvidia-gpu", replace(sub, extras=(chain, *sub.extras))) == "INPUT_ROLE_DUPLICATE"
    # an extra that is neither a RIM nor a PEM chain
    assert _code("nvidia-gpu", replace(sub, extras=(*sub.extras, b"\x00" * 64))) == "INPUT_EXTRA_UNRECOGNIZED"


def test_nvidia_gpu_sdk_list_carries_its_own_chains() -> None:
    _seed, sub = _nvidia("nvidia-sdk-list")
    chain = seeds("nvidia-gpu")[0].submission.extras[0]
    index = [s.name for s in seeds("nvidia-gpu")].index("nvidia-sdk-list")
    assert _code("nvidia-gpu", replace(sub, extras=(chain,)), index) == "INPUT_ROLE_DUPLICATE"
    fields = {"certificate_chain": chain.decode()}
    assert _code("nvidia-gpu", replace(sub, fields=fields), index) == "INPUT_ROLE_DUPLICATE"


def test_nvidia_gpu_sdk_list_base64_follows_the_one_rule() -> None:
    """Line-wrapped, unpadded and URL-safe base64 in the SDK list decode like everywhere else."""
    seed, sub = _nvidia("nvidia-sdk-list")
    doc = json.loads(sub.evidence)
    items = doc["evidence_list"] if isinstance(doc, dict) else doc
    for item in items:
        raw = base64.b64decode(item["evidence"])
        text = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        item["evidence"] = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    rewritten = replace(sub, evidence=json.dumps(doc).encode())
    appraisal = seed.verifier.verify(rewritten, seed.make_ctx())
    assert appraisal.attester_claims["nvidia"]["gpus"] == len(items)
    items[0]["evidence"] = "+_" + items[0]["evidence"]  # mixed alphabets
    index = [s.name for s in seeds("nvidia-gpu")].index("nvidia-sdk-list")
    assert _code("nvidia-gpu", replace(sub, evidence=json.dumps(doc).encode()), index) == ("NVIDIA_EVIDENCE_MALFORMED")


def test_token_in_evidence_and_field_is_a_duplicate() -> None:
    seed = seeds("gcp-token")[0]
    sub = replace(seed.submission, fields={"token": seed.submission.evidence.decode()})
    assert _code("gcp-token", sub) == "INPUT_ROLE_DUPLICATE"
    # the field alone (empty evidence) is the same token
    alone = Submission(b"", fields={"token": seed.submission.evidence.decode()})
    assert seed.verifier.verify(alone, seed.make_ctx()).kind == "gcp-token"


def test_tdx_collateral_typo_no_longer_fetches_silently() -> None:
    seed = seeds("tdx")[0]
    sub = Submission(seed.submission.evidence, fields={"colateral": seed.submission.fields["collateral"]})
    assert _code("tdx", sub) == "INPUT_FIELD_UNKNOWN"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aGVsbG8=", b"hello"),
        ("aGVsbG8", b"hello"),  # padding optional
        ("aGVs\nbG8=\n", b"hello"),  # whitespace (line breaks) ignored
        ("-_8=", b"\xfb\xff"),  # URL-safe alphabet
        ("+/8=", b"\xfb\xff"),  # standard alphabet
        ("", b""),
    ],
)
def test_one_base64_rule_accepts(text: str, expected: bytes) -> None:
    assert decode_base64(text, "x") == expected


@pytest.mark.parametrize(
    "text",
    [
        "+_8=",
        "aGVsbG8==",
        "aGVsbG8=x",
        "aGV=sbG8",
        "a",
        "*",
        "aGVsbG8===",
        "aGVs====",  # a full quantum followed by padding
        "=aGVs",
        "aGVsbG8=aGVsbG8=",  # data after padding
        "aGVsbG\u00e9",  # a non-ASCII character
        5,
        None,
    ],
)
def test_one_base64_rule_refuses(text: object) -> None:
    with pytest.raises(BrokerError) as exc:
        decode_base64(text, "x")
    assert exc.value.code.name == "INPUT_BASE64_INVALID" and exc.value.status == 400


def test_tdx_collateral_as_deeply_nested_json_text_is_typed() -> None:
    seed = seeds("tdx")[0]
    sub = Submission(seed.submission.evidence, fields={"collateral": "[" * 100_000 + "]" * 100_000})
    assert _code("tdx", sub) == "MALFORMED_EVIDENCE"
