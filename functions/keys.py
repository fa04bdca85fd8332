"""Lambda handler: GET /jwks, /.well-known/openid-configuration and /v1/schema (thin)."""

from functions._http import make_handler

handler = make_handler([("GET", "/jwks"), ("GET", "/.well-known/openid-configuration"), ("GET", "/v1/schema")])
