"""``azure-token``: Microsoft Azure Attestation (MAA) JWTs as evidence."""
