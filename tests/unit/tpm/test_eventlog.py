"""TCG event logs: real GCE logs (standalone and inside the GCE attestation), replay vs quoted PCRs, facts,
and tampering (digests, content, separators, unlogged PCRs, truncation)."""

from __future__ import annotations

import hashlib
import struct

import pytest
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.tpm import (
    event_log_claims,
    initial_value,
    parse_event_log,
    replay,
    verify_event_log,
    verify_quote,
)
from attestation_broker.evidence.tpm.abi import ALG_SHA1, ALG_SHA256
from attestation_broker.evidence.tpm.eventlog import EV_EFI_VARIABLE_DRIVER_CONFIG, EV_SEPARATOR, EventLog

from tests.support.errors import code_of, raised_code
from tests.support.vectors import vector
from tests.unit.tpm.helpers import gce_attestation

UBUNTU = "tpm/gce-eventlog-ubuntu-2404-amd-sevsnp.bin"
GKE = "tpm/gce-eventlog-confidential-gke-debug-251000.bin"


@pytest.mark.parametrize(
    ("name", "events", "pcr0", "pcr4", "pcr7", "tech", "secure_boot"),
    [
        (
            UBUNTU,
            116,
            "50597a27846e91d025eef597abbc89f72bff9af849094db97b0684d8bc4c515e",
            "abe8b3fa6aecb36c2fd93c6f6edde661c21b353d007410a2739d69bfa7e1b9be",
            "33ad69850fb2c7f30b4f8b4bc10ed93fc954dc07fa726e84f50f3d192dc1c140",
            "sev-snp",
            False,
        ),
        (
            GKE,
            54,
            # The manifest lists fd1475af…84e8 for PCR0: that value extends the two SP800-155 EV_NO_ACTION
            # events, which PFP §10.4.5 forbids. Without them (as a TPM does) PCR0 is:
            "d0c70a9310cd0b55767084333022ce53f42befbb69c059ee6c0a32766f160783",
            "18314f0c33adea45e461155e190199716256ca532cd89e9aa3b7d2f6407fa4c8",
            "8c5dc451764d0db9c1e17da03564bcae3a09fa3d7f8e467d9c381dc8698377d6",
            "none",
            True,
        ),
    ],
)
def test_gce_logs_replay_and_facts(
    name: str, events: int, pcr0: str, pcr4: str, pcr7: str, tech: str, secure_boot: bool
) -> None:
    log = parse_event_log(vector(name))
    assert log.crypto_agile and log.banks == (0x0004, 0x000B, 0x000C) and len(log.events) == events
    assert log.pcrs == (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14)
    values = replay(log, "sha256")
    assert (values[0].hex(), values[4].hex(), values[7].hex()) == (pcr0, pcr4, pcr7)
    verified = verify_event_log(log, values, "sha256")
    claims = event_log_claims(verified)
    assert claims["event_count"] == events
    assert claims["separators"] == list(range(8))
    assert claims["gce_confidential_technology"] == tech
    assert claims["secure_boot"]["enabled"] is secure_boot
    assert set(claims["secure_boot"]) >= {"pk", "kek", "db", "dbx"}
    assert claims["boot"]["firmware_version"] == "GCE Virtual Firmware v2"
    assert claims["boot"]["kernel_cmdline"].startswith(("/vmlinuz", "/syslinux/vmlinuz"))
    assert len(claims["boot"]["efi_applications"]) >= 2
    # the SEV-SNP Ubuntu VM loaded shim then the kernel; PCR4 ends with their digests
    if name == UBUNTU:
        assert claims["boot"]["kernel"] == "5e8cb75acdf8e09e5fc14cc2d6ce0c2288af208976d97309851c661e91ec1e03"


def test_gce_attestation_quotes_match_log_in_all_banks() -> None:
    g = gce_attestation()
    for q in g.quotes:
        quote = verify_quote(q.quote, q.raw_sig, g.ak_pub, expected_extra_data=bytes.fromhex("9009"), pcrs=q.pcrs)
        assert quote.pcrs is not None
        # PCR10 (IMA) is not in the firmware log: the caller must ignore it; PCR17–22 are at reset (all ones).
        with pytest.raises(BrokerError) as exc:
            verify_event_log(g.event_log, quote.pcrs, quote.bank)
        assert raised_code(exc) == "TPM_EVENTLOG_UNLOGGED_PCR"
        verified = verify_event_log(g.event_log, quote.pcrs, quote.bank, ignore_pcrs=[10])
        assert verified.checked_pcrs == tuple(i for i in range(24) if i != 10)
        claims = event_log_claims(verified)
        assert claims["event_count"] == 44 and claims["secure_boot"]["enabled"] is True
        assert claims["gce_confidential_technology"] == "sev"
        assert claims["boot"]["firmware_version"] == "GCE Virtual Firmware v1"
        # two shim authority events do not hash to their digests: counted, not reported
        assert claims["secure_boot"]["unverified_authorities"] == 2
        # any quoted PCR that differs from the replay is caught
        logged = set(parse_event_log(g.event_log).pcrs)
        for index in (0, 4, 7, 9, 14, 16, 23):
            bad = dict(quote.pcrs)
            bad[index] = bytes(b ^ 1 for b in bad[index])
            with pytest.raises(BrokerError) as exc:
                verify_event_log(g.event_log, bad, quote.bank, ignore_pcrs=[10])
            expected = "TPM_EVENTLOG_REPLAY_MISMATCH" if index in logged else "TPM_EVENTLOG_UNLOGGED_PCR"
            assert raised_code(exc) == expected, index


def _rebuild(log: EventLog, raw: bytes) -> list[tuple[int, int]]:
    """(offset of event data, offset of the first digest) for each agile event, by walking ``raw``."""
    pos = 32 + struct.unpack_from("<I", raw, 28)[0]  # skip the Spec ID header
    out = []
    sizes = {0x0004: 20, 0x000B: 32, 0x000C: 48}
    for _ in log.events:
        count = struct.unpack_from("<I", raw, pos + 8)[0]
        digest_at = pos + 12
        p = digest_at
        for _ in range(count):
            alg = struct.unpack_from("<H", raw, p)[0]
            p += 2 + sizes[alg]
        size = struct.unpack_from("<I", raw, p)[0]
        out.append((p + 4, digest_at))
        pos = p + 4 + size
    return out


def _digest_offset(raw: bytes, digest_at: int, alg: int) -> int:
    p = digest_at
    sizes = {0x0004: 20, 0x000B: 32, 0x000C: 48}
    while True:
        a = struct.unpack_from("<H", raw, p)[0]
        if a == alg:
            return p + 2
        p += 2 + sizes[a]


def test_tampered_digest_is_a_replay_mismatch() -> None:
    raw = vector(UBUNTU)
    log = parse_event_log(raw)
    quoted = replay(log, "sha256")
    offsets = _rebuild(log, raw)
    idx = next(i for i, e in enumerate(log.events) if e.pcr == 4 and e.event_type == 0x80000003)
    at = _digest_offset(raw, offsets[idx][1], ALG_SHA256)
    tampered = bytearray(raw)
    tampered[at] ^= 1
    with pytest.raises(BrokerError) as exc:
        verify_event_log(bytes(tampered), quoted, "sha256")
    assert raised_code(exc) == "TPM_EVENTLOG_REPLAY_MISMATCH"


def test_tampered_secure_boot_content_is_caught() -> None:
    raw = vector(UBUNTU)
    log = parse_event_log(raw)
    quoted = replay(log, "sha256")
    offsets = _rebuild(log, raw)
    idx = next(i for i, e in enumerate(log.events) if e.event_type == EV_EFI_VARIABLE_DRIVER_CONFIG)
    ev = log.events[idx]
    assert ev.data.endswith(b"\x00")  # SecureBoot = 0 in this log; claim it was 1 without touching digests
    tampered = bytearray(raw)
    tampered[offsets[idx][0] + len(ev.data) - 1] = 1
    with pytest.raises(BrokerError) as exc:
        verify_event_log(bytes(tampered), quoted, "sha256")
    assert raised_code(exc) == "TPM_EVENTLOG_EVENT_DIGEST_MISMATCH"


def test_error_separator_fails() -> None:
    raw = vector(GKE)
    log = parse_event_log(raw)
    offsets = _rebuild(log, raw)
    idx = next(i for i, e in enumerate(log.events) if e.event_type == EV_SEPARATOR and e.pcr == 4)
    tampered = bytearray(raw)
    data_at = offsets[idx][0]
    tampered[data_at : data_at + 4] = b"\x01\x00\x00\x00"
    # re-hash every bank so that the log is self-consistent: only the separator value is wrong
    for alg, fn in ((0x0004, hashlib.sha1), (0x000B, hashlib.sha256), (0x000C, hashlib.sha384)):
        at = _digest_offset(bytes(tampered), offsets[idx][1], alg)
        d = fn(b"\x01\x00\x00\x00").digest()
        tampered[at : at + len(d)] = d
    bad_log = parse_event_log(bytes(tampered))
    with pytest.raises(BrokerError) as exc:
        verify_event_log(bad_log, replay(bad_log, "sha256"), "sha256")
    assert raised_code(exc) == "TPM_EVENTLOG_SEPARATOR_ERROR"


def test_unlogged_pcr_must_be_at_reset() -> None:
    log = parse_event_log(vector(UBUNTU))
    quoted = dict(replay(log, "sha256"))
    quoted[11] = initial_value(11, ALG_SHA256)
    quoted[17] = initial_value(17, ALG_SHA256)
    assert quoted[17] == b"\xff" * 32
    verify_event_log(log, quoted, "sha256")
    quoted[11] = b"\x01" * 32
    with pytest.raises(BrokerError) as exc:
        verify_event_log(log, quoted, "sha256")
    assert raised_code(exc) == "TPM_EVENTLOG_UNLOGGED_PCR"


def test_unchecked_pcr7_reports_no_secure_boot() -> None:
    log = parse_event_log(vector(GKE))
    quoted = {i: v for i, v in replay(log, "sha256").items() if i != 7}
    claims = event_log_claims(verify_event_log(log, quoted, "sha256"))
    assert "secure_boot" not in claims and 7 not in claims["event_log_pcrs"]


def _legacy_from_agile(log: EventLog) -> bytes:
    """A SHA-1-only (TCG 1.2 format) log with the same events, built from the agile log's SHA-1 digests."""
    out = bytearray()
    out += struct.pack("<II", 0, 3) + b"\x00" * 20 + struct.pack("<I", 16) + b"Spec ID Event00\x00"
    for e in log.events:
        out += struct.pack("<II", e.pcr, e.event_type) + e.digests[ALG_SHA1] + struct.pack("<I", len(e.data)) + e.data
    return bytes(out)


def test_legacy_sha1_log() -> None:
    agile = parse_event_log(vector(UBUNTU))
    legacy_raw = _legacy_from_agile(agile)
    legacy = parse_event_log(legacy_raw)
    assert not legacy.crypto_agile and legacy.banks == (ALG_SHA1,)
    assert replay(legacy, "sha1") == replay(agile, "sha1")
    verified = verify_event_log(legacy, replay(agile, "sha1"), "sha1")
    assert event_log_claims(verified)["event_log_format"] == "sha1-legacy"
    with pytest.raises(BrokerError) as exc:
        replay(legacy, "sha256")
    assert raised_code(exc) == "TPM_EVENTLOG_BANK_MISSING"
    # trailing zero padding (ACPI log areas) is tolerated, trailing garbage is not
    assert len(parse_event_log(legacy_raw + b"\x00" * 64).events) == len(legacy.events)
    with pytest.raises(BrokerError) as exc:
        parse_event_log(legacy_raw + b"\x01\x02\x03")
    assert raised_code(exc) == "TPM_EVENTLOG_MALFORMED"


@pytest.mark.parametrize(
    ("tail", "code"),
    [
        (b"\x00" * 7, None),  # zero padding shorter than an event header
        (b"\xff" * 300, None),  # erased-flash padding
        (b"\x00" * 40 + b"\x01", "TPM_EVENTLOG_MALFORMED"),  # zeros, then garbage: not padding
        (b"\xff" * 8 + b"\x00" * 8, "TPM_EVENTLOG_MALFORMED"),  # mixed fill is not padding
        (b"\x00\x00\x00\x00\x03", "TPM_EVENTLOG_MALFORMED"),  # a truncated event header
    ],
)
def test_trailing_bytes_after_an_agile_log(tail: bytes, code: str | None) -> None:
    raw = vector(UBUNTU)
    events = len(parse_event_log(raw).events)
    if code is None:
        assert len(parse_event_log(raw + tail).events) == events
    else:
        with pytest.raises(BrokerError) as exc:
            parse_event_log(raw + tail)
        assert raised_code(exc) == code


def test_startup_locality_seeds_pcr0() -> None:
    agile = parse_event_log(vector(UBUNTU))
    raw = bytearray(vector(UBUNTU))
    header_end = 32 + struct.unpack_from("<I", raw, 28)[0]
    digests = struct.pack("<I", 3) + b"".join(
        struct.pack("<H", alg) + b"\x00" * size for alg, size in ((4, 20), (11, 32), (12, 48))
    )
    body = b"StartupLocality\x00\x03"
    event = struct.pack("<II", 0, 3) + digests + struct.pack("<I", len(body)) + body
    with_locality = parse_event_log(bytes(raw[:header_end]) + event + bytes(raw[header_end:]))
    assert with_locality.startup_locality == 3
    values = replay(with_locality, "sha256")
    assert values[0] != replay(agile, "sha256")[0]
    assert initial_value(0, ALG_SHA256, 3) == b"\x00" * 31 + b"\x03"
    # EV_NO_ACTION does not extend: only the seed differs
    assert replay(with_locality, "sha256")[4] == replay(agile, "sha256")[4]


def test_truncated_logs_are_malformed() -> None:
    raw = vector(GKE)
    for cut in (10, 40, 100, len(raw) - 1):
        with pytest.raises(BrokerError) as exc:
            parse_event_log(raw[:cut])
        assert raised_code(exc) == "TPM_EVENTLOG_MALFORMED"
    with pytest.raises(BrokerError) as exc:
        parse_event_log(b"")
    assert raised_code(exc) == "TPM_EVENTLOG_MALFORMED"


@pytest.mark.parametrize("name", [UBUNTU, GKE])
def test_verified_log_memo_is_keyed_by_log_and_every_quoted_value(name: str) -> None:
    raw = vector(name)
    quoted = replay(parse_event_log(raw), "sha256")
    first = verify_event_log(raw, quoted, "sha256")
    assert verify_event_log(bytearray(raw), dict(quoted), "sha256") is first  # same bytes, same values: memoized
    # After a success was memoized, any other PCR value, ignored set or log byte is replayed again in full.
    wrong = {**quoted, 4: bytes(32)}
    assert code_of(verify_event_log, raw, wrong, "sha256") == "TPM_EVENTLOG_REPLAY_MISMATCH"
    checked = verify_event_log(raw, wrong, "sha256", ignore_pcrs=[4]).checked_pcrs
    assert checked == tuple(sorted(i for i in quoted if i != 4))
    assert code_of(verify_event_log, raw[:-1], quoted, "sha256") == "TPM_EVENTLOG_MALFORMED"
    # A log of the same length whose SHA-256 digest of one PCR0 event differs: the memo entry for that length, bank
    # and these PCR values verified other bytes, so this log is replayed (and refused), not served from memory.
    log = parse_event_log(raw)
    idx = next(i for i, e in enumerate(log.events) if e.pcr == 0 and e.event_type != 0x3)
    at = _digest_offset(raw, _rebuild(log, raw)[idx][1], ALG_SHA256)
    tampered = raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1 :]
    assert code_of(verify_event_log, tampered, quoted, "sha256") == "TPM_EVENTLOG_REPLAY_MISMATCH"
    assert verify_event_log(raw, quoted, "sha256").log.events == first.log.events
    # A failure is never memoized: the same wrong values fail again.
    assert code_of(verify_event_log, raw, wrong, "sha256") == "TPM_EVENTLOG_REPLAY_MISMATCH"
