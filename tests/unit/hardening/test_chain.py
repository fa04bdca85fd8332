"""The shared path builder and walker (trust/chain.py): one set of rules for skew, basicConstraints, keyUsage,
path length, for the library-built paths and for AMD's RSA-PSS chains."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from attestation_broker.errors import CERT_CHAIN_INVALID, BrokerError
from attestation_broker.evidence.snp.checks import pinned_trust
from attestation_broker.trust.chain import require_valid, verify_ordered_path, verify_path
from attestation_broker.trust.x509 import load_certificates
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from tests.support.vectors import vector
from tests.unit.tokens.helpers import fresh_key, issue, self_signed

NOW = datetime(2024, 6, 1, tzinfo=UTC)
SKEW = timedelta(seconds=60)


def _ca(issuer_key, issuer, key, cn, *, key_usage: bool = True, path_length: int | None = None):  # type: ignore[no-untyped-def]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2030, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
    )
    if key_usage:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _code(fn) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(BrokerError) as exc:
        fn()
    return exc.value.code.name


def test_rules_are_the_same_for_every_chain() -> None:
    root_key, mid_key, leaf_key = fresh_key("root"), fresh_key("mid"), fresh_key("leaf")
    root = self_signed(root_key, "Test Root")
    mid = _ca(root_key, root, mid_key, "Test Mid")
    leaf = issue(mid_key, mid, leaf_key, "Test Leaf", ca=False)
    assert verify_path(leaf, [mid], [root], now=NOW, skew=SKEW, max_depth=3)[-1] == root

    # an issuer without keyUsage is refused (it used to pass in one kind)
    bare = _ca(root_key, root, mid_key, "Test Mid", key_usage=False)
    leaf2 = issue(mid_key, bare, leaf_key, "Test Leaf", ca=False)
    assert _code(lambda: verify_path(leaf2, [bare], [root], now=NOW, skew=SKEW, max_depth=3)) == "CERT_CHAIN_INVALID"

    # path length 0 on the root forbids an intermediate CA below it
    root0 = _ca(root_key, self_signed(root_key, "Test Root"), root_key, "Test Root", path_length=0)
    mid0 = _ca(root_key, root0, mid_key, "Test Mid")
    leaf3 = issue(mid_key, mid0, leaf_key, "Test Leaf", ca=False)
    assert _code(lambda: verify_path(leaf3, [mid0], [root0], now=NOW, skew=SKEW, max_depth=3)) == "CERT_CHAIN_INVALID"

    # a CA as the leaf, a missing intermediate, a foreign root
    assert _code(lambda: verify_path(mid, [], [root], now=NOW, skew=SKEW, max_depth=3)) == "CERT_CHAIN_INVALID"
    assert _code(lambda: verify_path(leaf, [], [root], now=NOW, skew=SKEW, max_depth=3)) == "CERT_CHAIN_INVALID"
    other = self_signed(fresh_key("other"), "Test Root")
    assert _code(lambda: verify_path(leaf, [mid], [other], now=NOW, skew=SKEW, max_depth=3)) == "CERT_CHAIN_INVALID"


def test_clock_skew_applies_at_both_ends() -> None:
    root_key, leaf_key = fresh_key("root"), fresh_key("leaf")
    root = self_signed(root_key, "Test Root")
    start = datetime(2024, 6, 1, tzinfo=UTC)
    leaf = issue(root_key, root, leaf_key, "Test Leaf", ca=False, start=start, days=1)
    ok = verify_path(leaf, [], [root], now=start - timedelta(seconds=30), skew=SKEW, max_depth=2)
    assert ok[0] == leaf
    assert _code(lambda: verify_path(leaf, [], [root], now=start - timedelta(seconds=90), skew=SKEW, max_depth=2)) == (
        "CERT_EXPIRED"
    )
    end = start + timedelta(days=1)
    assert verify_path(leaf, [], [root], now=end + timedelta(seconds=30), skew=SKEW, max_depth=2)[0] == leaf
    assert _code(lambda: verify_path(leaf, [], [root], now=end + timedelta(seconds=90), skew=SKEW, max_depth=2)) == (
        "CERT_EXPIRED"
    )


# --- the hand-written walker applies the same rules (AMD's RSA-PSS chains) ---------------------------------


def test_ordered_walker_agrees_with_the_path_builder() -> None:
    root_key, mid_key, leaf_key = fresh_key("root"), fresh_key("mid"), fresh_key("leaf")
    root = self_signed(root_key, "Test Root")
    mid = _ca(root_key, root, mid_key, "Test Mid")
    bare = _ca(root_key, root, mid_key, "Test Mid", key_usage=False)
    root0 = _ca(root_key, self_signed(root_key, "Test Root"), root_key, "Test Root", path_length=0)
    mid0 = _ca(root_key, root0, mid_key, "Test Mid")
    not_ca = issue(root_key, root, mid_key, "Test Mid", ca=False)
    other = self_signed(fresh_key("other"), "Test Root")
    leaf = issue(mid_key, mid, leaf_key, "Test Leaf", ca=False)
    ca_leaf = issue(mid_key, mid, leaf_key, "Test Leaf", ca=True)
    cases = {
        # name: (leaf, intermediates, anchor, expected code or "" for accepted)
        "good": (leaf, [mid], root, ""),
        "issuer without keyUsage": (issue(mid_key, bare, leaf_key, "Test Leaf", ca=False), [bare], root, "x"),
        "path length exceeded": (issue(mid_key, mid0, leaf_key, "Test Leaf", ca=False), [mid0], root0, "x"),
        "issuer not a CA": (issue(mid_key, not_ca, leaf_key, "Test Leaf", ca=False), [not_ca], root, "x"),
        "leaf is a CA": (ca_leaf, [mid], root, "x"),
        "foreign root": (leaf, [mid], other, "x"),
    }
    for name, (cert, intermediates, anchor, refused) in cases.items():
        _agree(name, cert, intermediates, anchor, refused=bool(refused))
    assert _code(lambda: verify_ordered_path([leaf, mid, root], max_depth=2)) == "CERT_CHAIN_INVALID"  # depth


def _agree(
    name: str,
    cert: x509.Certificate,
    intermediates: list[x509.Certificate],
    anchor: x509.Certificate,
    *,
    refused: bool,
) -> None:
    path = [cert, *intermediates, anchor]
    if refused:
        assert _code(lambda: verify_ordered_path(path, max_depth=3)) == "CERT_CHAIN_INVALID", name
        built = lambda: verify_path(cert, intermediates, [anchor], now=NOW, skew=SKEW, max_depth=3)  # noqa: E731
        assert _code(built) == "CERT_CHAIN_INVALID", name
    else:
        verify_ordered_path(path, max_depth=3)
        assert verify_path(cert, intermediates, [anchor], now=NOW, skew=SKEW, max_depth=3) == path


AMD_LEAVES = [
    # (vector, product, kind)
    ("snp/trustee-azure-milan-hcl/vcek.pem", "Milan", "vcek"),
    ("snp/trustee-azure-genoa-hcl/vcek-genoa.pem", "Genoa", "vcek"),
    ("snp/virtee-turin-vcek-only/vcek_turin.der", "Turin", "vcek"),
    ("snp/trustee-aws-vlek-milan-v3/test-vlek.der", "Milan", "vlek"),
]


@pytest.mark.parametrize(("name", "product", "kind"), AMD_LEAVES)
def test_real_amd_chains_need_the_walker(name: str, product: str, kind: str) -> None:
    roots = pinned_trust().roots(product)
    certs = load_certificates(vector(name), CERT_CHAIN_INVALID, "AMD leaf")
    leaf = next(c for c in certs if c.subject.rfc4514_string().startswith(("CN=SEV-VCEK", "CN=SEV-VLEK")))
    intermediate = roots.intermediate_for(kind)
    assert intermediate is not None
    # AMD's RSA-PSS (SHA-384, salt 48) is refused by cryptography's verifier, whatever the extension policies ...
    at = max(leaf.not_valid_before_utc, intermediate.not_valid_before_utc)
    assert _code(lambda: verify_path(leaf, [intermediate], [roots.ark], now=at, skew=SKEW, max_depth=3)) == (
        "CERT_CHAIN_INVALID"
    )
    # ... and accepted by the walker with the same rules, and the real CAs satisfy them (cA, keyCertSign, pathLen).
    verify_ordered_path([leaf, intermediate, roots.ark], max_depth=3)
    require_valid([leaf, intermediate, roots.ark], at, SKEW, "AMD chain")
    other = pinned_trust().roots("Turin" if product != "Turin" else "Milan")
    assert _code(lambda: verify_ordered_path([leaf, intermediate, other.ark], max_depth=3)) == "CERT_CHAIN_INVALID"


def test_depth_means_the_same_for_builder_and_walker() -> None:
    """``max_depth`` counts every certificate of the path, leaf and anchor included, for both."""
    root_key, mid_key, leaf_key = fresh_key("root"), fresh_key("mid"), fresh_key("leaf")
    root = self_signed(root_key, "Test Root")
    mid = _ca(root_key, root, mid_key, "Test Mid")
    leaf = issue(mid_key, mid, leaf_key, "Test Leaf", ca=False)
    assert verify_path(leaf, [mid], [root], now=NOW, skew=SKEW, max_depth=3) == [leaf, mid, root]
    verify_ordered_path([leaf, mid, root], max_depth=3)
    assert _code(lambda: verify_path(leaf, [mid], [root], now=NOW, skew=SKEW, max_depth=2)) == "CERT_CHAIN_INVALID"
    assert _code(lambda: verify_ordered_path([leaf, mid, root], max_depth=2)) == "CERT_CHAIN_INVALID"


NV = "nvidia/"
NVIDIA_DEVICE_CHAINS = [
    "nvtrust/h100pcie_545.00_2023/gpuAkCertChain.txt",
    "nvtrust/h100pcie_550.90.07_2025/hopperCertChain.txt",
    "attestation-sdk/gb100_575.32/blackwellCertChain.txt",
    "attestation-sdk/ls10_switch_96.10.55.00.01/switchCertChain.txt",
]


@pytest.mark.parametrize("name", NVIDIA_DEVICE_CHAINS)
def test_real_nvidia_device_chains_pass_the_builder_unrelaxed(name: str) -> None:
    """Hopper, Blackwell and NVSwitch chains: the explicit policies, unrelaxed, at the pinned root; their
    certificates end at 9999-12-31, which the skew arithmetic must not overflow on."""
    from attestation_broker.evidence.nvidia_gpu.trust import device_root

    certs = load_certificates(vector(NV + name), CERT_CHAIN_INVALID, "device chain")
    assert certs[-1] == device_root() and certs[0].not_valid_after_utc.year == 9999
    leaf, intermediates = certs[0], list(certs[1:-1])
    path = verify_path(leaf, intermediates, [device_root()], now=NOW + timedelta(days=700), skew=SKEW, max_depth=5)
    assert path == list(certs)
    require_valid(path, datetime(9999, 12, 31, 23, 59, tzinfo=UTC), SKEW, "device chain")
    assert _code(lambda: verify_path(leaf, intermediates[1:], [device_root()], now=NOW, skew=SKEW, max_depth=5)) == (
        "CERT_CHAIN_INVALID"
    )


@pytest.mark.parametrize(
    "name",
    [
        "museop/NV_GPU_DRIVER_GH100_550.90.07.swidtag",
        "museop/NV_GPU_VBIOS_1010_0200_882_96009F0001.swidtag",
        "attestation-sdk/ls10_switch_96.10.55.00.01/switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml",
    ],
)
def test_real_nvidia_rim_chains_need_the_walker(name: str) -> None:
    """NVIDIA's Reference Value CAs encode pre-2050 dates as GeneralizedTime: cryptography's builder refuses
    the genuine chain whatever the policies; the walker accepts it with the same extension rules."""
    from attestation_broker.evidence.nvidia_gpu.rim import _certificates, _signer_chain
    from attestation_broker.evidence.nvidia_gpu.trust import rim_root
    from lxml import etree

    certs = _certificates(etree.fromstring(vector(NV + name)))
    body = [c for c in certs if c != rim_root()]
    at = max(c.not_valid_before_utc for c in body) + timedelta(days=1)
    assert _code(lambda: verify_path(body[0], body[1:], [rim_root()], now=at, skew=SKEW, max_depth=4)) == (
        "CERT_CHAIN_INVALID"
    )
    chain = _signer_chain(certs, rim_root())
    assert list(chain.path) == [*body, rim_root()]
    verify_ordered_path(chain.path, max_depth=4)
    assert _code(lambda: verify_ordered_path([body[0], *body[2:], rim_root()], max_depth=4)) == "CERT_CHAIN_INVALID"
