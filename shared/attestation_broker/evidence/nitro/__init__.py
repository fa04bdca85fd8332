"""AWS Nitro Enclaves attestation documents (evidence kind ``nitro``)."""
