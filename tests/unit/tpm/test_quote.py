"""TPM core on real quotes: Azure (bare RSA signatures, PEM/JWK AKs, bincode), GCE (TPMT_SIGNATURE,
TPMT_PUBLIC AK, SHA-1/SHA-256/SHA-384 banks); mutations of every signed region."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable

import pytest
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.tpm import load_ak_public, parse_attest, parse_signature, verify_quote
from attestation_broker.evidence.tpm.abi import (
    ALG_RSASSA,
    ALG_SHA256,
    Attest,
    Signature,
    _parse_attest_checked,
    _parse_tpmt_signature,
    _parse_tpmt_signature_checked,
)
from cryptography.hazmat.primitives import serialization

from tests.support.errors import raised_code
from tests.support.vectors import vector
from tests.unit.tpm.helpers import azure_bincode, flip, gce_attestation, hcl_ak_jwk


# (name, message, signature, ak, extraData, selected PCRs, pcr values or None)
def _azure_cases() -> list[tuple[str, bytes, bytes, object, bytes, tuple[int, ...], dict[int, bytes] | None]]:
    b = azure_bincode(vector("tpm/azure-vtpm-quote-2024-02.bincode"))
    b2 = azure_bincode(vector("azure/az-snp-quote-911B0EF8.bincode"))
    j = json.loads(vector("azure/az-snp-tpm-quote-911B0EF8.json"))
    all24 = tuple(range(24))
    return [
        (
            "azure-nonce010203",
            vector("tpm/azure-vtpm-quote-nonce010203.msg"),
            vector("tpm/azure-vtpm-quote-nonce010203.sig"),
            vector("tpm/azure-vtpm-quote-nonce010203.akpub.pem"),
            bytes.fromhex("010203"),
            (15, 16, 22),
            None,
        ),
        (
            "azure-2024-02-bincode",
            b.message,
            b.signature,
            vector("tpm/azure-vtpm-quote-2024-02.akpub.pem"),
            b"challenge",
            all24,
            b.pcrs,
        ),
        (
            "azure-911B0EF8-bincode-hcl-jwk",
            b2.message,
            b2.signature,
            hcl_ak_jwk(vector("azure/az-snp-hcl-report-911B0EF8.bin")),
            b"challenge",
            all24,
            b2.pcrs,
        ),
        (
            "azure-911B0EF8-json",
            bytes.fromhex(j["message"]),
            bytes.fromhex(j["signature"]),
            hcl_ak_jwk(vector("azure/az-snp-hcl-report-911B0EF8.bin")),
            b"challenge",
            all24,
            {i: bytes.fromhex(v) for i, v in enumerate(j["pcrs"])},
        ),
        (
            "azure-D3A9B6BE-9pcrs",
            vector("azure/az-snp-tpm-quote-D3A9B6BE.msg"),
            vector("azure/az-snp-tpm-quote-D3A9B6BE.sig"),
            hcl_ak_jwk(vector("azure/az-snp-hcl-report-D3A9B6BE.bin")),
            b"challenge",
            (0, 1, 2, 3, 4, 5, 6, 7, 14),
            None,
        ),
        (
            "azure-tdx-2E7D4867",
            vector("azure/az-tdx-tpm-quote-2E7D4867.msg"),
            vector("azure/az-tdx-tpm-quote-2E7D4867.sig"),
            hcl_ak_jwk(vector("azure/az-tdx-hcl-report-2E7D4867.bin")),
            b"tdx challenge",
            all24,
            None,
        ),
    ]


def _gce_cases() -> list[tuple[str, bytes, bytes, object, bytes, tuple[int, ...], dict[int, bytes] | None]]:
    g = gce_attestation()
    return [
        (f"gce-cos85-{q.bank}", q.quote, q.raw_sig, g.ak_pub, bytes.fromhex("9009"), tuple(range(24)), q.pcrs)
        for q in g.quotes
    ]


CASES = _azure_cases() + _gce_cases()
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_real_quote_verifies(case: tuple) -> None:  # type: ignore[type-arg]
    _, msg, sig, ak, extra, selected, pcrs = case
    q = verify_quote(msg, sig, ak, expected_extra_data=extra, pcrs=pcrs)
    assert q.extra_data == extra and q.extra_data_checked
    assert q.selected == selected
    assert q.hash_alg == ALG_SHA256 and q.signature.sig_alg == ALG_RSASSA
    if pcrs is not None:
        assert q.pcrs is not None and set(q.pcrs) == set(selected)
        # pcrDigest = SHA-256(concat), whatever the bank (manifest "Surprises" 5)
        assert q.pcr_digest == hashlib.sha256(b"".join(pcrs[i] for i in selected)).digest()
    else:
        assert q.pcrs is None


def test_known_values() -> None:
    q = verify_quote(
        vector("tpm/azure-vtpm-quote-nonce010203.msg"),
        vector("tpm/azure-vtpm-quote-nonce010203.sig"),
        vector("tpm/azure-vtpm-quote-nonce010203.akpub.pem"),
        expected_extra_data=None,
    )
    assert q.attest.clock_info.clock == 177952818 and q.attest.clock_info.reset_count == 3
    assert q.attest.firmware_version == 0x2020031200120003
    assert q.signature.bare and q.ak.source == "spki_pem" and q.ak.restricted is None
    assert not q.extra_data_checked
    g = gce_attestation()
    banks = [verify_quote(x.quote, x.raw_sig, g.ak_pub, expected_extra_data=None).bank for x in g.quotes]
    assert banks == ["sha1", "sha256", "sha384"]
    a = parse_attest(g.quotes[0].quote)
    assert a.firmware_version == 0x2016051100162800 and a.clock_info.reset_count == 10
    assert a.clock_info.clock == 8219159479


def test_gce_ak_forms_and_attributes() -> None:
    g = gce_attestation()
    ak = load_ak_public(g.ak_pub)
    assert ak.source == "tpmt_public" and ak.restricted is True and ak.scheme == (ALG_RSASSA, ALG_SHA256)
    assert ak.name is not None and ak.name[:2] == b"\x00\x0b"
    # TPM2B_PUBLIC wrapping, DER SPKI, PEM SPKI and JWK of the same key all load to the same pin value.
    tpm2b = len(g.ak_pub).to_bytes(2, "big") + g.ak_pub
    der = ak.spki_der
    pem = ak.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    numbers = ak.key.public_numbers()  # type: ignore[union-attr]

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()

    jwk = {"kty": "RSA", "n": b64(numbers.n), "e": b64(numbers.e)}
    for form, source in ((tpm2b, "tpm2b_public"), (der, "spki_der"), (pem, "spki_pem"), (jwk, "jwk")):
        other = load_ak_public(form)
        assert other.source == source and other.spki_sha256 == ak.spki_sha256
    assert load_ak_public(json.dumps(jwk)).spki_sha256 == ak.spki_sha256
    # AK cert public key == ak_pub (manifest check), here through load_ak_public of a cryptography key.
    from cryptography import x509

    assert load_ak_public(x509.load_der_x509_certificate(g.ak_cert).public_key()).spki_sha256 == ak.spki_sha256


def _regions(msg: bytes) -> list[tuple[str, int]]:
    """One offset inside each field of the TPMS_ATTEST that is past the magic/type."""
    signer_len = int.from_bytes(msg[6:8], "big")
    extra_at = 8 + signer_len
    extra_len = int.from_bytes(msg[extra_at : extra_at + 2], "big")
    clock_at = extra_at + 2 + extra_len
    return [
        ("qualifiedSigner", 8 + signer_len - 1),
        ("extraData", extra_at + 2),
        ("clock", clock_at + 7),
        ("resetCount", clock_at + 11),
        ("firmwareVersion", clock_at + 17 + 7),
        ("pcrDigest", len(msg) - 1),
    ]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_mutating_signed_regions_breaks_signature(case: tuple) -> None:  # type: ignore[type-arg]
    _, msg, sig, ak, _extra, _sel, _pcrs = case
    for region, offset in _regions(msg):
        with pytest.raises(BrokerError) as exc:
            verify_quote(flip(msg, offset), sig, ak, expected_extra_data=None)
        assert raised_code(exc) == "TPM_SIGNATURE_INVALID", region
    # magic / type: not a quote at all
    for offset in (0, 5):
        with pytest.raises(BrokerError) as exc:
            verify_quote(flip(msg, offset), sig, ak, expected_extra_data=None)
        assert raised_code(exc) == "TPM_ATTEST_NOT_QUOTE"
    # the signature itself (last byte: inside the RSA value for both wrappers)
    with pytest.raises(BrokerError) as exc:
        verify_quote(msg, flip(sig, len(sig) - 1), ak, expected_extra_data=None)
    assert raised_code(exc) == "TPM_SIGNATURE_INVALID"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_wrong_nonce_pcrs_and_key(case: tuple) -> None:  # type: ignore[type-arg]
    _, msg, sig, ak, extra, selected, pcrs = case
    with pytest.raises(BrokerError) as exc:
        verify_quote(msg, sig, ak, expected_extra_data=extra + b"x")
    assert raised_code(exc) == "NONCE_BINDING_MISMATCH"
    with pytest.raises(BrokerError) as exc:
        verify_quote(msg, sig, ak, expected_extra_data=hashlib.sha256(extra).digest())
    assert raised_code(exc) == "NONCE_BINDING_MISMATCH"
    if pcrs is not None:
        for index in (selected[0], selected[-1]):
            bad = dict(pcrs)
            bad[index] = flip(bad[index], 0)
            with pytest.raises(BrokerError) as exc:
                verify_quote(msg, sig, ak, expected_extra_data=extra, pcrs=bad)
            assert raised_code(exc) == "TPM_PCR_DIGEST_MISMATCH"
        missing = {i: v for i, v in pcrs.items() if i != selected[-1]}
        with pytest.raises(BrokerError) as exc:
            verify_quote(msg, sig, ak, expected_extra_data=extra, pcrs=missing)
        assert raised_code(exc) == "TPM_PCR_VALUES_MISSING"
    other = vector("tpm/azure-vtpm-quote-2024-02.akpub.pem")
    if load_ak_public(other).spki_sha256 == load_ak_public(ak).spki_sha256:  # type: ignore[arg-type]
        other = vector("tpm/azure-vtpm-quote-nonce010203.akpub.pem")
    with pytest.raises(BrokerError) as exc:
        verify_quote(msg, sig, other, expected_extra_data=extra)
    assert raised_code(exc) in ("TPM_SIGNATURE_INVALID", "TPM_SIGNATURE_SCHEME_MISMATCH")


def test_gce_bank_selection_and_pcr_sizes() -> None:
    g = gce_attestation()
    q1 = g.quotes[0]
    with pytest.raises(BrokerError) as exc:
        verify_quote(q1.quote, q1.raw_sig, g.ak_pub, expected_extra_data=None, pcr_bank="sha256")
    assert raised_code(exc) == "TPM_PCR_BANK_NOT_QUOTED"
    wrong_size = {i: v + b"\x00" for i, v in q1.pcrs.items()}
    with pytest.raises(BrokerError) as exc:
        verify_quote(q1.quote, q1.raw_sig, g.ak_pub, expected_extra_data=None, pcrs=wrong_size)
    assert raised_code(exc) == "TPM_PCRS_MALFORMED"
    # values of another bank do not verify this quote
    with pytest.raises(BrokerError) as exc:
        verify_quote(q1.quote, q1.raw_sig, g.ak_pub, expected_extra_data=None, pcrs=g.quotes[1].pcrs)
    assert raised_code(exc) == "TPM_PCRS_MALFORMED"


def test_restricted_scheme_enforced() -> None:
    g = gce_attestation()
    q = g.quotes[1]
    # A bare signature is RSASSA with the key's hash: same bytes verify without the wrapper...
    bare = q.raw_sig[6:]
    assert verify_quote(q.quote, bare, g.ak_pub, expected_extra_data=None).signature.bare
    # ...but an RSAPSS label conflicts with the AK's restricted RSASSA scheme.
    pss = b"\x00\x16" + q.raw_sig[2:]
    with pytest.raises(BrokerError) as exc:
        verify_quote(q.quote, pss, g.ak_pub, expected_extra_data=None)
    assert raised_code(exc) == "TPM_SIGNATURE_SCHEME_MISMATCH"
    # An unrestricted AK (restricted bit cleared) is refused: it could have signed a forged TPMS_ATTEST.
    attrs_at = 4
    unrestricted = bytearray(g.ak_pub)
    unrestricted[attrs_at + 1] &= 0xFE  # objectAttributes bit 16 (restricted)
    with pytest.raises(BrokerError) as exc:
        verify_quote(q.quote, q.raw_sig, bytes(unrestricted), expected_extra_data=None)
    assert raised_code(exc) == "TPM_AK_NOT_RESTRICTED"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "TPM_ATTEST_MALFORMED"),
        (b"\xff\x54\x43\x47\x80\x18", "TPM_ATTEST_MALFORMED"),
        (b"\xff\x54\x43\x47\x80\x17" + b"\x00" * 40, "TPM_ATTEST_NOT_QUOTE"),
    ],
)
def test_attest_malformed(data: bytes, code: str) -> None:
    with pytest.raises(BrokerError) as exc:
        parse_attest(data)
    assert raised_code(exc) == code


def test_attest_truncation_and_trailing_bytes() -> None:
    msg = vector("tpm/azure-vtpm-quote-nonce010203.msg")
    for cut in range(6, len(msg)):
        with pytest.raises(BrokerError) as exc:
            parse_attest(msg[:cut])
        assert raised_code(exc) == "TPM_ATTEST_MALFORMED"
    with pytest.raises(BrokerError) as exc:
        parse_attest(msg + b"\x00")
    assert raised_code(exc) == "TPM_ATTEST_MALFORMED"
    # an extraData length larger than TPM2B_DATA allows
    signer_len = int.from_bytes(msg[6:8], "big")
    bad = bytearray(msg)
    bad[8 + signer_len : 8 + signer_len + 2] = (65).to_bytes(2, "big")
    with pytest.raises(BrokerError) as exc:
        parse_attest(bytes(bad))
    assert raised_code(exc) == "TPM_ATTEST_MALFORMED"


def _attest_outcome(parse: Callable[[bytes], Attest | Signature], data: bytes) -> object:
    try:
        return parse(data)
    except BrokerError as exc:
        return (exc.code.name, str(exc))


@pytest.mark.parametrize("name", ["tpm/azure-vtpm-quote-nonce010203.msg", "gce"])
def test_attest_fast_reader_agrees_with_checked_reader(name: str) -> None:
    """parse_attest reads regular quotes with precompiled layouts and falls back to the field-by-field reader: on
    every truncation, extension and single-byte change of a real quote both give the same result or the same error."""
    msg = gce_attestation().quotes[1].quote if name == "gce" else vector(name)
    variants = [msg[:cut] for cut in range(len(msg))] + [msg + b"\x00", msg + b"\x01\x02"]
    for offset in range(len(msg)):
        for value in (0x00, 0x01, 0x03, 0x41, 0x80, 0xFF, msg[offset] ^ 0x01):
            variants.append(msg[:offset] + bytes([value]) + msg[offset + 1 :])
    regular = 0
    for data in variants:
        got = _attest_outcome(parse_attest, data)
        assert got == _attest_outcome(_parse_attest_checked, data), data.hex()
        regular += isinstance(got, Attest)
    assert regular > len(msg)  # the mutations of values (not of lengths) still parse: both paths were compared


def test_signature_fast_reader_agrees_with_checked_reader() -> None:
    """An RSA TPMT_SIGNATURE is read in one step when it fills its buffer exactly; on every truncation, extension
    and single-byte change of the header of a real one, that agrees with the field-by-field reader."""
    sig = gce_attestation().quotes[1].raw_sig
    variants = [sig[:cut] for cut in range(len(sig))] + [sig + b"\x00"]
    for offset in range(8):
        for value in (0x00, 0x01, 0x02, 0x0B, 0x0C, 0x12, 0x14, 0x16, 0x18, 0xFF):
            variants.append(sig[:offset] + bytes([value]) + sig[offset + 1 :])
    regular = 0
    for data in variants:
        got = _attest_outcome(_parse_tpmt_signature, data)
        assert got == _attest_outcome(_parse_tpmt_signature_checked, data), data[:8].hex()
        regular += isinstance(got, Signature)
    assert regular >= 4


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "TPM_SIGNATURE_MALFORMED"),
        (b"\x00\x14\x00\x0b\x00\x10" + b"\x01" * 15, "TPM_SIGNATURE_MALFORMED"),
        (b"\x00\x14\x00\x99\x00\x01\x01", "TPM_SIGNATURE_MALFORMED"),
        (b"\x00\x10", "TPM_SIGNATURE_MALFORMED"),
        (b"\x01" * 100, "TPM_SIGNATURE_MALFORMED"),
    ],
)
def test_signature_malformed(data: bytes, code: str) -> None:
    with pytest.raises(BrokerError) as exc:
        parse_signature(data)
    assert raised_code(exc) == code


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"garbage", "TPM_AK_MALFORMED"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "TPM_AK_MALFORMED"),
        ({"kty": "oct", "k": "AA"}, "TPM_AK_UNSUPPORTED"),
        ({"kty": "RSA", "n": "!!", "e": "AQAB"}, "TPM_AK_MALFORMED"),
        (b"\x00\x01\x00\x0b" + b"\x00" * 4, "TPM_AK_MALFORMED"),
    ],
)
def test_ak_malformed(data: object, code: str) -> None:
    with pytest.raises(BrokerError) as exc:
        load_ak_public(data)  # type: ignore[arg-type]
    assert raised_code(exc) == code


def test_ak_truncated_tpmt_public() -> None:
    ak = gce_attestation().ak_pub
    for cut in (10, 30, len(ak) - 1):
        with pytest.raises(BrokerError) as exc:
            load_ak_public(ak[:cut])
        assert raised_code(exc) == "TPM_AK_MALFORMED"
