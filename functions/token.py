"""Lambda handler: POST /v1/token, the RFC 8693 token exchange (thin; behaviour lives in attestation_broker.api)."""

from functions._http import make_handler

handler = make_handler([("POST", "/v1/token")])
