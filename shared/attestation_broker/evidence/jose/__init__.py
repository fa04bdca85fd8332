"""Code shared by the upstream-token evidence kinds (``gcp-token``, ``azure-token``): compact JWS parsing,
algorithm allow-list, key sets fetched from pinned issuers, time/audience/nonce checks and provenance."""
