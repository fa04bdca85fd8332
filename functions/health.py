"""Lambda handler: GET /healthz (thin; behaviour lives in shared.api)."""

from functions._http import make_handler

handler = make_handler([("GET", "/healthz")])
