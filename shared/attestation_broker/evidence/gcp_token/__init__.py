"""``gcp-token``: Google Cloud Attestation / Confidential Space OIDC and PKI tokens as evidence."""
