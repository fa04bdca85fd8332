"""GCE vTPM evidence as a go-tpm-tools ``attest.Attestation`` (go-tpm-tools proto/attest.proto), built
inside the guest the way go-tpm-tools' ``client.Key.Attest`` does:

1. the AK: its template (TPMT_PUBLIC) and certificate (DER) are provisioned by GCE in NV — RSA at
   0x01c10001 / 0x01c10000, ECC at 0x01c10003 / 0x01c10002 (go-tpm-tools client/handles.go) — and the key
   is re-created as a primary in the endorsement hierarchy from that template (the TPM derives the same key
   from the same template and seed, so it matches the certificate);
2. one TPM2_Quote per allocated PCR bank over all PCRs, each with extraData = SHA-256(nonce ‖ user_data)
   (:meth:`ExpectedBinding.tpm_extra_data`), with the PCR values;
3. the TCG event log from securityfs;
4. on a Confidential VM, the configfs-tsm SEV-SNP / TDX report with REPORT_DATA = SHA-512(nonce ‖ user data)
   (:meth:`ExpectedBinding.report_data`), rendered as the go-sev-guest / go-tdx-guest message the broker's
   ``gcp-vtpm`` kind re-encodes.

The message classes are the broker's own (:mod:`attestation_broker.evidence.gcp_vtpm.proto`), so both sides
share one schema.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from attestation_broker.binding import ExpectedBinding
from attestation_broker.client import tsm
from attestation_broker.client.errors import CLIENT_NV_INDEX_ABSENT, CLIENT_TPM_COMMAND_FAILED
from attestation_broker.client.tpm import Tpm

GCE_AK_CERT_NV_RSA = 0x01C10000
GCE_AK_TEMPLATE_NV_RSA = 0x01C10001
GCE_AK_CERT_NV_ECC = 0x01C10002
GCE_AK_TEMPLATE_NV_ECC = 0x01C10003
BANKS = ("sha1", "sha256", "sha384", "sha512")  # the banks go-tpm-tools quotes (tpm.HashAlgo)
HASH_ALGO = {"sha1": 4, "sha256": 11, "sha384": 12, "sha512": 13}

_ALG_RSA, _ALG_ECC, _ALG_NULL = 0x0001, 0x0023, 0x0010
_HASH_NAMES = {0x0004: "sha1", 0x000B: "sha256", 0x000C: "sha384", 0x000D: "sha512"}
_SCHEMES = {0x0014: "rsassa", 0x0016: "rsapss", 0x0018: "ecdsa"}
_CURVES = {0x0003: "ecc256", 0x0004: "ecc384", 0x0005: "ecc521"}


@dataclass(frozen=True)
class AkTemplate:
    """What tpm2_createprimary needs to re-create a key from a TPMT_PUBLIC template."""

    name_alg: str
    key_alg: str  # tpm2-tools -G spec, e.g. "rsa2048:rsassa-sha256:null"
    attributes: int
    auth_policy: bytes


def parse_template(data: bytes) -> AkTemplate:
    """A TPMT_PUBLIC (TPM 2.0 Part 2 §12.2.4) restricted signing-key template; unique must be empty."""
    try:
        alg, name_alg, attributes, policy_len = struct.unpack_from(">HHIH", data, 0)
        pos = 10
        policy = data[pos : pos + policy_len]
        pos += policy_len
        (sym,) = struct.unpack_from(">H", data, pos)
        if sym != _ALG_NULL:
            raise CLIENT_TPM_COMMAND_FAILED("AK template has a symmetric algorithm: not a signing key")
        scheme, scheme_hash = struct.unpack_from(">HH", data, pos + 2)
        pos += 6
        hash_name = _HASH_NAMES[scheme_hash]
        if alg == _ALG_RSA:
            bits, _exponent = struct.unpack_from(">HI", data, pos)
            pos += 6
            key_alg = f"rsa{bits}:{_SCHEMES[scheme]}-{hash_name}:null"
            (unique_len,) = struct.unpack_from(">H", data, pos)
            unique_empty = unique_len == 0 or not any(data[pos + 2 : pos + 2 + unique_len])
        elif alg == _ALG_ECC:
            curve, kdf = struct.unpack_from(">HH", data, pos)
            pos += 4
            if kdf != _ALG_NULL:
                raise CLIENT_TPM_COMMAND_FAILED("AK template has a KDF scheme: not supported")
            key_alg = f"{_CURVES[curve]}:{_SCHEMES[scheme]}-{hash_name}:null"
            x_len = struct.unpack_from(">H", data, pos)[0]
            y_len = struct.unpack_from(">H", data, pos + 2 + x_len)[0]
            unique_empty = not any(data[pos + 2 : pos + 2 + x_len]) and not any(
                data[pos + 4 + x_len : pos + 4 + x_len + y_len]
            )
        else:
            raise CLIENT_TPM_COMMAND_FAILED(f"AK template key type {alg:#06x} is neither RSA nor ECC")
        name = _HASH_NAMES[name_alg]
    except (struct.error, KeyError):
        raise CLIENT_TPM_COMMAND_FAILED("the AK template in NV is not a TPMT_PUBLIC this client understands") from None
    if not unique_empty:
        # tpm2_createprimary takes unique data only in its own file format; GCE AK templates carry none.
        raise CLIENT_TPM_COMMAND_FAILED("AK template with non-zero unique data is not supported")
    return AkTemplate(name, key_alg, attributes, bytes(policy))


def der_length(data: bytes) -> int:
    """Length of the DER SEQUENCE at the start of ``data`` (NV buffers may be zero-padded)."""
    if len(data) < 2 or data[0] != 0x30:
        raise CLIENT_TPM_COMMAND_FAILED("the AK certificate in NV is not DER")
    first = data[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    return 2 + count + int.from_bytes(data[2 : 2 + count], "big")


def _ak_indices(tpm: Tpm) -> tuple[int, int]:
    indices = tpm.nv_indices()
    for cert, template in ((GCE_AK_CERT_NV_RSA, GCE_AK_TEMPLATE_NV_RSA), (GCE_AK_CERT_NV_ECC, GCE_AK_TEMPLATE_NV_ECC)):
        if cert in indices and template in indices:
            return cert, template
    raise CLIENT_NV_INDEX_ABSENT(
        "no GCE AK certificate/template NV index pair (0x01c10000/0x01c10001 or 0x01c10002/0x01c10003): "
        "not a GCE Shielded/Confidential VM, or vTPM not enabled"
    )


def _pcr_message(pcr_file: bytes, bank: str) -> Any:
    from attestation_broker.evidence.gcp_vtpm import proto
    from attestation_broker.evidence.tpm.pcrfiles import pcrs_from_tpm2tools

    msg = proto.new("tpm.PCRs")
    msg.hash = HASH_ALGO[bank]
    for index, value in sorted(pcrs_from_tpm2tools(pcr_file).get(bank, {}).items()):
        msg.pcrs[index] = value
    return msg


def build_attestation(
    tpm: Tpm, binding: ExpectedBinding, *, event_log: bytes | None, tee: tsm.TsmReport | None = None
) -> Any:
    """The ``attest.Attestation`` message for ``binding``."""
    from attestation_broker.evidence.gcp_vtpm import proto

    cert_index, template_index = _ak_indices(tpm)
    cert_raw = tpm.nv_read(cert_index, what="GCE AK certificate")
    template = parse_template(tpm.nv_read(template_index, what="GCE AK template"))
    att = proto.new("attest.Attestation")
    att.ak_cert = cert_raw[: der_length(cert_raw)]
    with tpm.primary_from_template(
        "e", template.name_alg, template.key_alg, template.attributes, template.auth_policy
    ) as (context, public):
        att.ak_pub = public[2:]  # go-tpm-tools carries TPMT_PUBLIC (no TPM2B size)
        allocated = tpm.pcr_banks()
        for bank in BANKS:
            pcrs = allocated.get(bank)
            if not pcrs:
                continue
            quote = tpm.quote(str(context), binding.tpm_extra_data(), bank=bank, pcrs=pcrs)
            q = att.quotes.add()
            q.quote, q.raw_sig = quote.message, quote.signature
            q.pcrs.CopyFrom(_pcr_message(quote.pcrs, bank))
    if event_log:
        att.event_log = event_log
    if tee is not None:
        from attestation_broker.client.gcp_tee import attach_tee

        attach_tee(att, tee)
    return att
