"""Test helpers: render real SEV-SNP reports / TDX quotes as go-sev-guest / go-tdx-guest protobuf messages.

No public go-tpm-tools Attestation with a TEE part exists (MANIFEST-vtpm-cloud.md "Not found"), so the
tests build one from real GCE hardware evidence with the guest client's encoder
(attestation_broker/client/gcp_tee.py), which is written independently of the broker's decoder
(attestation_broker/evidence/gcp_vtpm/abi.py) so that the round trip checks both directions.
"""

from __future__ import annotations

from attestation_broker.client.gcp_tee import snp_attestation_message, snp_report_message, tdx_quote_message

__all__ = ["snp_attestation_message", "snp_report_message", "tdx_quote_message"]
