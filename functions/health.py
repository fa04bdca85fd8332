"""Lambda handler: GET /healthz (thin; behaviour lives in attestation_broker.api)."""

from functions._http import make_handler

handler = make_handler([("GET", "/healthz")])
