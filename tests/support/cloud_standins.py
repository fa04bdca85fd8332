"""Loopback stand-ins for the clouds' token services, so the real SDKs run their real exchange code.

Each stand-in records every request (method, path, headers, form) and answers like the service it stands in
for, after checking the federation token the way that service documents it (docs/federation.md): signature
against the broker's JWKS, ``iss``, ``aud``, ``sub`` of the configured federated credential, algorithm.

- :class:`EntraStandIn`: Microsoft Entra's tenant discovery document and v2.0 token endpoint over HTTPS (a
  test CA), for azure-identity ``ClientAssertionCredential`` (client-credentials grant with a jwt-bearer
  client assertion). RS256 only, like Entra (AADSTS5002738 for anything else).
- :class:`GoogleStandIn`: Google STS ``/v1/token`` (RFC 8693) and IAM Credentials ``generateAccessToken``
  over HTTPS, for google-auth identity-pool credentials.

AWS STS is moto's (tests/support/moto_kms.py ``moto_server``); boto3's request is recorded with a botocore
event hook.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class LoopbackCA:
    """TEST ONLY: a CA and a 127.0.0.1 server certificate it issued, written under ``directory``."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    @classmethod
    def create(cls, directory: Path) -> LoopbackCA:
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attestation-broker test CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        paths = cls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
        paths.ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        paths.cert_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        paths.key_pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return paths

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_pem, self.key_pem)
        return context


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: Mapping[str, str]
    form: Mapping[str, str]


Responder = Callable[[Recorded], tuple[int, Any]]


@dataclass
class Server:
    base_url: str = ""
    requests: list[Recorded] = field(default_factory=list)


@contextmanager
def https_server(ca: LoopbackCA, respond: Responder) -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
            record = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, form)
            state.requests.append(record)
            status, payload = respond(record)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _serve  # noqa: N815
        do_POST = _serve  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = ca.server_context().wrap_socket(server.socket, server_side=True)
    state.base_url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def check_federation_token(
    token: str,
    jwks: Mapping[str, Any],
    *,
    issuer: str,
    audience: str,
    algorithms: tuple[str, ...],
    now: float,
) -> dict[str, Any]:
    """What the clouds check: a known ``kid`` in the issuer's JWKS, an accepted algorithm, the signature,
    ``iss``, ``aud`` and the time claims (as of ``now``, with 5 minutes of skew). Raises ``jwt.PyJWTError``
    (or KeyError for an unknown kid)."""
    header = jwt.get_unverified_header(token)
    if header.get("alg") not in algorithms:
        raise jwt.InvalidAlgorithmError(f"'{header.get('alg')}' is not a supported signature algorithm")
    key = jwt.PyJWKSet.from_dict(dict(jwks))[header["kid"]].key
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=list(algorithms),
        audience=audience,
        issuer=issuer,
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    if not (claims["nbf"] - 300 <= now < claims["exp"] + 300):
        raise jwt.ExpiredSignatureError("outside the token's validity")
    return claims


@dataclass
class EntraStandIn:
    """Microsoft Entra for one tenant and one app with one federated identity credential (issuer, subject)."""

    tenant: str
    client_id: str
    issuer: str
    subject: str
    jwks: Callable[[], Mapping[str, Any]]
    clock: Callable[[], float] = time.time
    server: Server = field(default_factory=Server)
    issued: list[str] = field(default_factory=list)

    def respond(self, request: Recorded) -> tuple[int, Any]:
        base = self.server.base_url
        if request.method == "GET" and request.path.startswith(f"/{self.tenant}/v2.0/.well-known/openid-configuration"):
            return 200, {
                "issuer": f"{base}/{self.tenant}/v2.0",
                "authorization_endpoint": f"{base}/{self.tenant}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/{self.tenant}/oauth2/v2.0/token",
                "jwks_uri": f"{base}/{self.tenant}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "tenant_region_scope": "EU",
            }
        if request.method == "POST" and request.path == f"/{self.tenant}/oauth2/v2.0/token":
            return self._token(request.form)
        return 404, {"error": "not_found"}

    def _token(self, form: Mapping[str, str]) -> tuple[int, Any]:
        def invalid(code: str, description: str) -> tuple[int, Any]:
            return 400, {
                "error": code,
                "error_description": description,
                "error_codes": [int(description[6:].split(":")[0])],
            }

        if form.get("grant_type") != "client_credentials" or form.get("client_id") != self.client_id:
            return invalid("unauthorized_client", "AADSTS7000215: unexpected grant or client.")
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return invalid("invalid_client", "AADSTS7000216: client_assertion_type is required.")
        try:
            claims = check_federation_token(
                form.get("client_assertion", ""),
                self.jwks(),
                issuer=self.issuer,
                audience="api://AzureADTokenExchange",
                algorithms=("RS256",),
                now=self.clock(),
            )
        except jwt.InvalidAlgorithmError:
            return invalid("invalid_client", "AADSTS5002738: the signature algorithm is not supported.")
        except (jwt.PyJWTError, KeyError):
            return invalid("invalid_client", "AADSTS7000274: the client assertion does not verify.")
        if claims.get("sub") != self.subject:
            return invalid("invalid_client", "AADSTS7002021: no matching federated identity record for the subject.")
        access = f"entra-access-{len(self.issued)}"
        self.issued.append(access)
        return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": access}


@contextmanager
def entra(ca: LoopbackCA, **kwargs: Any) -> Iterator[EntraStandIn]:
    stand_in = EntraStandIn(**kwargs)
    with https_server(ca, stand_in.respond) as server:
        stand_in.server = server
        yield stand_in


@dataclass
class GoogleStandIn:
    """Google STS for one workload identity pool provider (issuer, allowed audience) and IAM Credentials."""

    provider: str  # projects/<n>/locations/global/workloadIdentityPools/<pool>/providers/<provider>
    issuer: str
    jwks: Callable[[], Mapping[str, Any]]
    clock: Callable[[], float] = time.time
    server: Server = field(default_factory=Server)
    federated: list[str] = field(default_factory=list)

    def respond(self, request: Recorded) -> tuple[int, Any]:
        if request.method == "POST" and request.path == "/v1/token":
            return self._sts(request.form)
        prefix = "/v1/projects/-/serviceAccounts/"
        if (
            request.method == "POST"
            and request.path.startswith(prefix)
            and request.path.endswith(":generateAccessToken")
        ):
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            if bearer not in self.federated:
                return 401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}}
            return 200, {"accessToken": "sa-access-token", "expireTime": "2099-01-01T00:00:00Z"}
        return 404, {"error": {"code": 404, "status": "NOT_FOUND"}}

    def _sts(self, form: Mapping[str, str]) -> tuple[int, Any]:
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange":
            return 400, {"error": "unsupported_grant_type", "error_description": "grant_type"}
        if form.get("audience") != "//iam.googleapis.com/" + self.provider:
            return 400, {"error": "invalid_target", "error_description": "The target service indicated is invalid."}
        if form.get("subject_token_type") != "urn:ietf:params:oauth:token-type:jwt":
            return 400, {"error": "invalid_request", "error_description": "subject_token_type"}
        try:
            claims = check_federation_token(
                form.get("subject_token", ""),
                self.jwks(),
                issuer=self.issuer,
                audience="https://iam.googleapis.com/" + self.provider,
                algorithms=("RS256", "ES256"),
                now=self.clock(),
            )
        except (jwt.PyJWTError, KeyError):
            return 400, {"error": "invalid_grant", "error_description": "The access token is invalid."}
        if len(claims["sub"].encode()) > 127:
            return 400, {"error": "invalid_grant", "error_description": "google.subject is too long."}
        access = f"google-federated-{len(self.federated)}"
        self.federated.append(access)
        return 200, {
            "access_token": access,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "Bearer",
            "expires_in": 3600,
        }


@contextmanager
def google(ca: LoopbackCA, **kwargs: Any) -> Iterator[GoogleStandIn]:
    stand_in = GoogleStandIn(**kwargs)
    with https_server(ca, stand_in.respond) as server:
        stand_in.server = server
        yield stand_in
