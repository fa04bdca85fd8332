"""ATTESTATION_REPORT parsing on every real SNP report, plus structural negatives."""

from __future__ import annotations

import struct
import uuid

import pytest
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.snp import parse_report
from attestation_broker.evidence.snp.abi import TcbVersion, parse_cert_table, product_from_cpuid, split_evidence

from tests.support.errors import code_of
from tests.support.vectors import vector
from tests.unit.snp.support import CASES, V4_REPORT, azure_cases


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_parse_real_reports(case) -> None:
    report = parse_report(vector(case.report))
    assert report.version == case.version
    assert report.vmpl == case.vmpl
    assert report.signing_key_name == case.signing_key
    assert report.measurement.hex().startswith(case.measurement_prefix)
    assert report.debug is case.debug
    assert report.cpuid_product == (case.product if case.version >= 3 else None)


def test_v4_report_fields() -> None:
    report = parse_report(vector(V4_REPORT))
    assert report.version == 4
    assert report.cpuid_product == "Milan"
    assert TcbVersion.decode(report.reported_tcb_raw, "Milan").as_dict() == {
        "bootloader": 4,
        "tee": 0,
        "snp": 25,
        "microcode": 219,
    }
    assert report.launch_mit_vector is None


def test_v5_mitigation_vectors_and_tcbs() -> None:
    report = parse_report(vector("snp/teekit-gcp-milan-v5/sev-gcp.bin"))
    assert (report.launch_mit_vector, report.current_mit_vector) == (0xB, 0xB)
    assert report.current_version == (1, 55, 35)
    assert report.platform_info == 0x25
    assert report.chip_id.hex().startswith("980cf7b6")


def test_d3_tcbs_differ() -> None:
    report = parse_report(vector("snp/trustee-aws-vlek-milan-v3/test-vlek-report.bin"))
    decode = lambda raw: TcbVersion.decode(raw, "Milan").microcode  # noqa: E731
    assert (decode(report.current_tcb_raw), decode(report.committed_tcb_raw), decode(report.reported_tcb_raw)) == (
        220,
        219,
        217,
    )
    assert report.chip_id == bytes(64)


def test_genoa_cpuid() -> None:
    report = parse_report(vector("snp/trustee-azure-genoa-hcl/snp-report.derived.bin"))
    assert (report.cpuid_fam_id, report.cpuid_mod_id, report.cpuid_product) == (0x19, 0x11, "Genoa")


@pytest.mark.parametrize("name,report,_certs", azure_cases(), ids=lambda x: x if isinstance(x, str) else "")
def test_azure_carved_reports_parse(name, report, _certs) -> None:
    assert parse_report(report).signing_key_name == "vcek"


def test_turin_tcb_layout() -> None:
    tcb = TcbVersion.decode(int.from_bytes(bytes([1, 2, 3, 4, 0, 0, 0, 5]), "little"), "Turin")
    assert tcb == TcbVersion(bootloader=2, tee=3, snp=4, microcode=5, fmc=1)
    milan = TcbVersion.decode(int.from_bytes(bytes([1, 2, 0, 0, 0, 0, 3, 4]), "little"), "Milan")
    assert milan.as_dict() == {"bootloader": 1, "tee": 2, "snp": 3, "microcode": 4}


@pytest.mark.parametrize(
    "fam,model,product",
    [(0x19, 0x01, "Milan"), (0x19, 0x11, "Genoa"), (0x19, 0xA0, "Genoa"), (0x1A, 0x02, "Turin"), (0x17, 0x31, None)],
)
def test_product_from_cpuid(fam, model, product) -> None:
    assert product_from_cpuid(fam, model) == product


def test_truncated() -> None:
    data = vector("snp/trustee-milan-v2/test-report.bin")
    for size in (0, 4, 0x2A0, 0x49F):
        assert code_of(split_evidence, data[:size]) == "SNP_REPORT_TRUNCATED"


def test_padding_accepted_and_garbage_rejected() -> None:
    data = vector("snp/trustee-milan-v2/test-report.bin")
    report, table = split_evidence(data + bytes(4000))
    assert report.raw == data and table == ()
    assert code_of(split_evidence, data + b"\x01") == "SNP_REPORT_TRAILING_DATA"
    assert code_of(split_evidence, data + bytes(200_000)) == "SNP_REPORT_TOO_LARGE"


def test_unknown_versions() -> None:
    data = bytearray(vector("snp/trustee-milan-v2/test-report.bin"))
    for version in (0, 1, 6, 0xFFFFFFFF):
        struct.pack_into("<I", data, 0, version)
        assert code_of(split_evidence, bytes(data)) == "SNP_REPORT_VERSION_UNSUPPORTED"


def test_signature_algorithm() -> None:
    data = bytearray(vector("snp/trustee-milan-v2/test-report.bin"))
    struct.pack_into("<I", data, 0x34, 2)
    assert code_of(split_evidence, bytes(data)) == "SNP_SIGNATURE_ALGORITHM_UNSUPPORTED"


RESERVED = {
    # offset → versions in which the byte is reserved
    0x04C: (2, 3, 4, 5),
    0x04F: (2, 3, 4, 5),
    0x188: (2,),  # CPUID_FAM_ID from v3 on
    0x18B: (2, 3, 4, 5),
    0x19F: (2, 3, 4, 5),
    0x1EB: (2, 3, 4, 5),
    0x1EF: (2, 3, 4, 5),
    0x1F8: (2, 3, 4),  # LAUNCH_MIT_VECTOR from v5 on
    0x208: (2, 3, 4, 5),
    0x29F: (2, 3, 4, 5),
    0x330: (2, 3, 4, 5),
    0x49F: (2, 3, 4, 5),
}
BY_VERSION = {
    2: "snp/trustee-milan-v2/test-report.bin",
    3: "snp/trustee-aws-vlek-milan-v3/test-vlek-report.bin",
    4: V4_REPORT,
    5: "snp/teekit-gcp-milan-v5/sev-gcp.bin",
}


@pytest.mark.parametrize("version", sorted(BY_VERSION))
@pytest.mark.parametrize("offset", sorted(RESERVED))
def test_reserved_fields(version, offset) -> None:
    data = bytearray(vector(BY_VERSION[version]))
    data[offset] ^= 0x40
    if version in RESERVED[offset]:
        assert code_of(split_evidence, bytes(data)) == "SNP_REPORT_RESERVED_NONZERO"
    else:
        split_evidence(bytes(data))  # a defined field in this version: parses


def test_key_info_reserved_bits() -> None:
    data = bytearray(vector("snp/trustee-milan-v2/test-report.bin"))
    data[0x48] |= 0x20
    assert code_of(split_evidence, bytes(data)) == "SNP_REPORT_RESERVED_NONZERO"


VCEK_GUID = uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd")


def _table(entries: list[tuple[bytes, bytes]]) -> bytes:
    head = 24 * (len(entries) + 1)
    out, blobs = b"", b""
    for guid, blob in entries:
        out += guid + struct.pack("<II", head + len(blobs), len(blob))
        blobs += blob
    return out + bytes(24) + blobs


def test_cert_table_after_report() -> None:
    data = vector("snp/trustee-milan-v2/test-report.bin")
    vcek = vector("snp/trustee-milan-v2/test-vcek.der")
    for guid in (VCEK_GUID.bytes, VCEK_GUID.bytes_le):
        _report, table = split_evidence(data + _table([(guid, vcek)]) + bytes(100))
        assert [(e.role, e.data) for e in table] == [("vcek", vcek)]


def test_cert_table_malformed() -> None:
    vcek = vector("snp/trustee-milan-v2/test-vcek.der")
    table = bytearray(_table([(VCEK_GUID.bytes, vcek)]))
    struct.pack_into("<I", table, 20, len(vcek) + 1)  # length past the end
    with pytest.raises(BrokerError) as exc:
        parse_cert_table(bytes(table))
    assert exc.value.code.name == "SNP_CERT_TABLE_MALFORMED"
    with pytest.raises(BrokerError) as exc:
        parse_cert_table(VCEK_GUID.bytes + struct.pack("<II", 24, 10))  # no terminator
    assert exc.value.code.name == "SNP_CERT_TABLE_MALFORMED"
