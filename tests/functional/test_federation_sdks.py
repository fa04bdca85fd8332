"""Each cloud SDK obtains credentials with a broker federation token from a loopback stand-in of its token
service (boto3 → moto STS, google-auth → Google STS + IAM Credentials, azure-identity → Entra over HTTPS with a
test CA), and the exact requests the SDKs sent are asserted. The broker side runs in process; the workload
client's exchange goes through the real router with an in-process transport."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
import pytest
from attestation_broker.api.http import HttpRequest
from attestation_broker.client.exchange import HttpReply
from attestation_broker.errors import BrokerError
from attestation_broker.federation import TokenSource, exchange
from attestation_broker.federation import aws as fed_aws
from attestation_broker.federation import azure as fed_azure
from attestation_broker.federation import gcp as fed_gcp

from tests.support.broker import Harness
from tests.support.cloud_standins import LoopbackCA, entra, google
from tests.support.federation import AUDIENCES, AWS_AUDIENCE, AZURE_AUDIENCE, GCP_AUDIENCE, attest, federation_harness

PROVIDER = GCP_AUDIENCE.removeprefix("https://iam.googleapis.com/")
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "0c4e5f2a-7f0e-4b8e-9b9b-2f6d1c0a1b2c"


def transport(h: Harness) -> Any:
    """The workload client's Transport, answered by the broker's router in process."""

    def send(method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> HttpReply:
        path = "/" + url.split("/", 3)[3]
        response = h.api.handle(HttpRequest(method, path, {k.lower(): v for k, v in headers.items()}, body or b""))
        return HttpReply(response.status, response.body, dict(response.headers))

    return send


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    harness = federation_harness(tmp_path)
    # The stand-ins check time claims against the real clock, as the clouds do.
    from datetime import UTC, datetime

    harness.clock[0] = datetime.now(UTC)
    return harness


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LoopbackCA:
    return LoopbackCA.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def trust_test_ca(ca: LoopbackCA, monkeypatch: pytest.MonkeyPatch) -> None:
    # requests (under azure-core and google-auth) trusts the bundle named here: only the test CA.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.ca_pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_pem))


def test_exchange_client_returns_the_federation_token_and_oauth_errors(h: Harness) -> None:
    ear = attest(h)["token"]
    for audience in AUDIENCES:
        token = exchange("https://broker.test", ear, audience, transport=transport(h))
        assert token.audience == audience and token.expires_in > 0
        assert jwt.decode(token.access_token, options={"verify_signature": False})["aud"] == audience
    with pytest.raises(BrokerError) as info:
        exchange("https://broker.test", ear, "https://not-allowed.example", transport=transport(h))
    assert info.value.code.name == "FEDERATE_EXCHANGE_REFUSED" and getattr(info.value, "error", "") == "invalid_target"
    with pytest.raises(BrokerError) as info:
        exchange("https://broker.test", ear[:-3] + "AAA", AWS_AUDIENCE, transport=transport(h))
    assert getattr(info.value, "error", "") == "invalid_grant"


# ------------------------------------------------------------------------------------------------ AWS


def test_boto3_assumes_a_role_with_the_federation_token(h: Harness, moto_endpoint: str, aws_env: None) -> None:
    import boto3

    admin = boto3.session.Session().client("iam", endpoint_url=moto_endpoint, region_name="us-east-1")
    provider = admin.create_open_id_connect_provider(
        Url="https://broker.test", ClientIDList=[AWS_AUDIENCE], ThumbprintList=["0" * 40]
    )["OpenIDConnectProviderArn"]
    role = admin.create_role(
        RoleName="attested-workload",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Federated": provider},
                        "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    sent: list[Any] = []
    sts = fed_aws.sts_client(endpoint_url=moto_endpoint)
    sts.meta.events.register("before-send.sts.AssumeRoleWithWebIdentity", lambda request, **_: sent.append(request))
    source = TokenSource("https://broker.test", AWS_AUDIENCE, lambda: attest(h)["token"], transport=transport(h))
    token = source()
    creds = fed_aws.assume_role(token, role, session_name="cvm-1", duration_seconds=900, client=sts)
    assert creds.access_key_id and creds.secret_access_key and creds.session_token
    assert creds.assumed_role_arn.endswith(":assumed-role/attested-workload/cvm-1")
    # Exactly what boto3 put on the wire: an unsigned AssumeRoleWithWebIdentity carrying the broker token.
    [request] = sent
    body = request.body.decode() if isinstance(request.body, bytes) else request.body
    form = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
    assert form["Action"] == "AssumeRoleWithWebIdentity" and form["Version"] == "2011-06-15"
    assert form["RoleArn"] == role and form["RoleSessionName"] == "cvm-1"
    assert form["WebIdentityToken"] == token and form["DurationSeconds"] == "900"
    assert "Authorization" not in request.headers
    tags = jwt.decode(token, options={"verify_signature": False})["https://aws.amazon.com/tags"]
    assert tags["principal_tags"]["ear_status"] == ["affirming"]
    document = fed_aws.credential_process_output(creds)
    assert document["Version"] == 1 and document["Expiration"].endswith("Z")
    assert set(document) == {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}


def test_unreachable_aws_sts_is_a_typed_error(aws_env: None) -> None:
    from tests.unit.aws.conftest import unreachable_endpoint

    with pytest.raises(BrokerError) as info:
        fed_aws.assume_role("a.b.c", "arn:aws:iam::123456789012:role/x", endpoint_url=unreachable_endpoint())
    assert info.value.code.name == "FEDERATE_CLOUD_REFUSED" and "EndpointConnectionError" in info.value.detail


# ------------------------------------------------------------------------------------------------ Google


def test_google_auth_exchanges_and_impersonates(h: Harness, ca: LoopbackCA, trust_test_ca: None) -> None:
    with google(ca, provider=PROVIDER, issuer="https://broker.test", jwks=h.broker.jwks) as sts:
        source = TokenSource("https://broker.test", GCP_AUDIENCE, lambda: attest(h)["token"], transport=transport(h))
        creds = fed_gcp.credentials(
            PROVIDER,
            source,
            service_account="workload@proj.iam.gserviceaccount.com",
            token_url=sts.server.base_url + "/v1/token",
            iam_credentials_url=sts.server.base_url,
        )
        token, expiry = fed_gcp.access_token(creds)
        assert token == "sa-access-token" and expiry is not None
        first, second = sts.server.requests
        assert (first.method, first.path) == ("POST", "/v1/token")
        assert first.form["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
        assert first.form["audience"] == "//iam.googleapis.com/" + PROVIDER
        assert first.form["subject_token_type"] == "urn:ietf:params:oauth:token-type:jwt"
        assert first.form["requested_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
        assert first.form["scope"] == "https://www.googleapis.com/auth/iam"
        claims = jwt.decode(first.form["subject_token"], options={"verify_signature": False})
        assert claims["aud"] == GCP_AUDIENCE and claims["sub"] == "test"
        assert second.path == "/v1/projects/-/serviceAccounts/workload@proj.iam.gserviceaccount.com:generateAccessToken"
        assert second.headers["authorization"] == "Bearer google-federated-0"


def test_google_auth_without_impersonation_uses_the_federated_token(
    h: Harness, ca: LoopbackCA, trust_test_ca: None
) -> None:
    with google(ca, provider=PROVIDER, issuer="https://broker.test", jwks=h.broker.jwks) as sts:
        source = TokenSource("https://broker.test", GCP_AUDIENCE, lambda: attest(h)["token"], transport=transport(h))
        creds = fed_gcp.credentials(PROVIDER, source, token_url=sts.server.base_url + "/v1/token")
        token, _ = fed_gcp.access_token(creds)
        assert token == "google-federated-0"
        [request] = sts.server.requests
        assert request.form["scope"] == "https://www.googleapis.com/auth/cloud-platform"


def test_google_sts_refuses_a_token_for_another_provider(h: Harness, ca: LoopbackCA, trust_test_ca: None) -> None:
    with google(ca, provider=PROVIDER + "-other", issuer="https://broker.test", jwks=h.broker.jwks) as sts:
        source = TokenSource("https://broker.test", GCP_AUDIENCE, lambda: attest(h)["token"], transport=transport(h))
        creds = fed_gcp.credentials(PROVIDER, source, token_url=sts.server.base_url + "/v1/token")
        with pytest.raises(BrokerError) as info:
            fed_gcp.access_token(creds)
        assert info.value.code.name == "FEDERATE_CLOUD_REFUSED"


# ------------------------------------------------------------------------------------------------ Azure


def test_azure_identity_gets_a_token_with_a_fresh_assertion_each_time(
    h: Harness, ca: LoopbackCA, trust_test_ca: None
) -> None:
    with entra(
        ca, tenant=TENANT, client_id=CLIENT_ID, issuer="https://broker.test", subject="test", jwks=h.broker.jwks
    ) as stand_in:
        calls: list[str] = []
        source = TokenSource("https://broker.test", AZURE_AUDIENCE, lambda: attest(h)["token"], transport=transport(h))

        def assertion() -> str:
            calls.append(source())
            return calls[-1]

        authority = stand_in.server.base_url.removeprefix("https://")
        cred = fed_azure.credential(TENANT, CLIENT_ID, assertion, authority=authority, disable_instance_discovery=True)
        token, expires_on = fed_azure.access_token(cred, "https://storage.azure.com/.default")
        assert token == "entra-access-0" and expires_on > 0
        cred2 = fed_azure.credential(TENANT, CLIENT_ID, assertion, authority=authority, disable_instance_discovery=True)
        assert fed_azure.access_token(cred2, "https://vault.azure.net/.default")[0] == "entra-access-1"
        assert len(calls) == 2 and calls[0] != calls[1]  # a fresh broker token per assertion
        posts = [r for r in stand_in.server.requests if r.method == "POST"]
        assert [r.path for r in posts] == [f"/{TENANT}/oauth2/v2.0/token"] * 2
        form = posts[0].form
        assert form["grant_type"] == "client_credentials" and form["client_id"] == CLIENT_ID
        assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        assert form["client_assertion"] == calls[0] and form["scope"] == "https://storage.azure.com/.default"
        assert jwt.get_unverified_header(calls[0])["alg"] == "RS256"


def test_entra_refuses_an_es256_assertion(h: Harness, ca: LoopbackCA, trust_test_ca: None, tmp_path: Path) -> None:
    import json as _json

    es256 = federation_harness(tmp_path / "es", federation_config=_json.dumps({"audiences": {"api://other": {}}}))
    es256.clock[0] = h.clock[0]
    with entra(
        ca, tenant=TENANT, client_id=CLIENT_ID, issuer="https://broker.test", subject="test", jwks=es256.broker.jwks
    ) as stand_in:
        claims = {"iss": "https://broker.test", "aud": AZURE_AUDIENCE, "sub": "test", "iat": 0, "nbf": 0, "exp": 2**40}
        token = es256.broker.tokens.sign({**claims, "jti": "x"})  # ES256, as the broker never issues for Entra
        authority = stand_in.server.base_url.removeprefix("https://")
        cred = fed_azure.credential(
            TENANT, CLIENT_ID, lambda: token, authority=authority, disable_instance_discovery=True
        )
        with pytest.raises(BrokerError) as info:
            fed_azure.access_token(cred)
        assert info.value.code.name == "FEDERATE_CLOUD_REFUSED" and "AADSTS5002738" in info.value.detail
