"""A real third-party OAuth client against a running AgentIdP, used the way its docs say.

Authlib (OAuth 2.0 client: client_credentials, RFC 7662 introspection, RFC 7009 revocation,
RFC 7523 private_key_jwt) and PyJWT (JWKS + JWT verification) are used unmodified; only the
bootstrap (organization, agent, credential) is plain `requests`, since that is AgentIdP's own API.

    AGENTIDP_BASE_URL=http://127.0.0.1:8787 pytest tests/python

scripts/test.sh starts a server and runs this with the right base URL.
"""

import os
import time
import uuid

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

BASE = os.environ.get("AGENTIDP_BASE_URL", "http://127.0.0.1:8787").rstrip("/")
TIMEOUT = 10


# --- fixtures: discovery and bootstrap ------------------------------------------------------


@pytest.fixture(scope="module")
def metadata():
    response = requests.get(f"{BASE}/.well-known/oauth-authorization-server", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def admin_token(metadata):
    """Creates an organization and returns an admin access token for it."""
    response = requests.post(
        f"{BASE}/v1/orgs", json={"name": f"python-{uuid.uuid4().hex[:8]}"}, timeout=TIMEOUT
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["organization"]["id"]
    admin = body["admin_credential"]
    assert admin["client_id"] and admin["client_secret"]

    session = OAuth2Session(
        admin["client_id"], admin["client_secret"], token_endpoint_auth_method="client_secret_basic"
    )
    token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    return {"access_token": token["access_token"], "org_id": body["organization"]["id"]}


def api(method, path, token, **kwargs):
    return requests.request(
        method,
        f"{BASE}{path}",
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=TIMEOUT,
        **kwargs,
    )


@pytest.fixture(scope="module")
def agent(admin_token):
    response = api(
        "POST",
        "/v1/agents",
        admin_token,
        json={
            "name": "python-client",
            "agent_type": "assistant",
            "capabilities": ["read:docs", "write:docs"],
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
def secret_credential(admin_token, agent):
    response = api("POST", f"/v1/agents/{agent['id']}/credentials", admin_token, json={})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["client_id"] and body["client_secret"]
    return body


def agent_session(credential, method="client_secret_basic"):
    return OAuth2Session(
        credential["client_id"], credential["client_secret"], token_endpoint_auth_method=method
    )


def verify_access_token(metadata, access_token):
    """Verifies a token the way a resource server would: offline, against the published JWKS."""
    header = jwt.get_unverified_header(access_token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert header.get("kid")
    signing_key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(access_token)
    return jwt.decode(
        access_token,
        signing_key.key,
        algorithms=["ES256"],
        audience=metadata["issuer"],
        issuer=metadata["issuer"],
        options={"require": ["exp", "iat", "nbf", "iss", "sub", "aud", "jti"]},
    )


# --- discovery (RFC 8414) -------------------------------------------------------------------


def test_metadata_advertises_what_a_client_needs(metadata):
    assert metadata["issuer"] == BASE
    for field in ("token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint"):
        assert metadata[field].startswith(metadata["issuer"] + "/"), field
    assert "client_credentials" in metadata["grant_types_supported"]
    assert {"client_secret_basic", "client_secret_post", "private_key_jwt"} <= set(
        metadata["token_endpoint_auth_methods_supported"]
    )


def test_openid_configuration_is_the_same_document(metadata):
    response = requests.get(f"{BASE}/.well-known/openid-configuration", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json() == metadata


def test_jwks_is_publicly_cacheable(metadata):
    response = requests.get(metadata["jwks_uri"], timeout=TIMEOUT)
    assert response.status_code == 200
    assert "max-age" in response.headers.get("Cache-Control", "")
    keys = response.json()["keys"]
    assert keys and all(key.get("kid") for key in keys)
    assert all("d" not in key for key in keys), "private key material in the JWKS"


# --- client_credentials with a client secret ------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_client_credentials_token_verifies_against_jwks(
    metadata, admin_token, agent, secret_credential, method
):
    session = agent_session(secret_credential, method)
    token = session.fetch_token(
        metadata["token_endpoint"], grant_type="client_credentials", scope="read:docs"
    )
    assert token["token_type"].lower() == "bearer"
    assert token["scope"] == "read:docs"
    assert token["expires_in"] > 0

    claims = verify_access_token(metadata, token["access_token"])
    assert claims["sub"] == agent["id"]
    assert claims["client_id"] == secret_credential["client_id"]
    assert claims["scope"] == "read:docs"
    assert claims["org_id"] == admin_token["org_id"]
    now = time.time()
    assert claims["iat"] <= now + 5 and claims["nbf"] <= now + 5 and claims["exp"] > now


def test_scope_outside_capabilities_is_invalid_scope(metadata, secret_credential):
    session = agent_session(secret_credential)
    with pytest.raises(Exception) as raised:
        session.fetch_token(
            metadata["token_endpoint"], grant_type="client_credentials", scope="agents:write"
        )
    assert "invalid_scope" in str(raised.value)


def test_wrong_secret_is_invalid_client(metadata, secret_credential):
    session = OAuth2Session(secret_credential["client_id"], "not-the-secret")
    with pytest.raises(Exception) as raised:
        session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert "invalid_client" in str(raised.value)


# --- introspection (RFC 7662) and revocation (RFC 7009) -------------------------------------


def test_introspect_then_revoke(metadata, agent, secret_credential):
    session = agent_session(secret_credential)
    token = session.fetch_token(
        metadata["token_endpoint"], grant_type="client_credentials", scope="read:docs write:docs"
    )
    access_token = token["access_token"]

    response = session.introspect_token(
        metadata["introspection_endpoint"], token=access_token, token_type_hint="access_token"
    )
    assert response.status_code == 200, response.text
    info = response.json()
    assert info["active"] is True
    assert info["scope"] == "read:docs write:docs"
    assert info["client_id"] == secret_credential["client_id"]
    assert info["sub"] == agent["id"]
    assert info["exp"] > time.time()

    response = session.revoke_token(
        metadata["revocation_endpoint"], token=access_token, token_type_hint="access_token"
    )
    assert response.status_code == 200, response.text

    response = session.introspect_token(metadata["introspection_endpoint"], token=access_token)
    assert response.status_code == 200
    assert response.json() == {"active": False}


def test_revoking_garbage_still_answers_200(metadata, secret_credential):
    session = agent_session(secret_credential)
    response = session.revoke_token(metadata["revocation_endpoint"], token="not-a-token")
    assert response.status_code == 200


def test_introspecting_garbage_is_inactive(metadata, secret_credential):
    session = agent_session(secret_credential)
    response = session.introspect_token(metadata["introspection_endpoint"], token="not-a-token")
    assert response.status_code == 200
    assert response.json() == {"active": False}


# --- private_key_jwt (RFC 7523) -------------------------------------------------------------


@pytest.fixture(scope="module")
def key_credential(admin_token, agent):
    private_key = ec.generate_private_key(ec.SECP256R1())
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key = ECKey.import_key(pem)
    public = key.as_dict(private=False)
    public_jwk = {member: public[member] for member in ("kty", "crv", "x", "y")}
    response = api(
        "POST",
        f"/v1/agents/{agent['id']}/credentials",
        admin_token,
        json={"kind": "private_key_jwt", "public_jwk": public_jwk},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["client_id"]
    assert "client_secret" not in body
    return {"client_id": body["client_id"], "key": key}


def private_key_session(metadata, credential):
    # AgentIdP accepts assertions that live at most five minutes; Authlib's default is an hour,
    # so the `exp` claim is set through Authlib's own `claims` parameter.
    session = OAuth2Session(
        credential["client_id"],
        credential["key"],
        token_endpoint_auth_method="private_key_jwt",
        revocation_endpoint_auth_method="private_key_jwt",
    )
    session.register_client_auth_method(
        PrivateKeyJWT(
            metadata["token_endpoint"], alg="ES256", claims={"exp": int(time.time()) + 120}
        )
    )
    return session


def test_private_key_jwt_token_verifies_against_jwks(metadata, admin_token, agent, key_credential):
    session = private_key_session(metadata, key_credential)
    token = session.fetch_token(
        metadata["token_endpoint"], grant_type="client_credentials", scope="write:docs"
    )
    claims = verify_access_token(metadata, token["access_token"])
    assert claims["sub"] == agent["id"]
    assert claims["client_id"] == key_credential["client_id"]
    assert claims["scope"] == "write:docs"
    assert claims["org_id"] == admin_token["org_id"]

    # The same client authentication works at the introspection endpoint. A new session: Authlib
    # stores the `jti` it generates into the `claims` dict it was given, so a second request
    # through the same PrivateKeyJWT would replay that `jti`, which AgentIdP rightly refuses.
    session = private_key_session(metadata, key_credential)
    response = session.introspect_token(
        metadata["introspection_endpoint"], token=token["access_token"]
    )
    assert response.status_code == 200, response.text
    assert response.json()["active"] is True


def test_private_key_jwt_from_another_key_is_refused(metadata, key_credential):
    stranger = ECKey.generate_key("P-256")
    session = private_key_session(
        metadata, {"client_id": key_credential["client_id"], "key": stranger}
    )
    with pytest.raises(Exception) as raised:
        session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    assert "invalid_client" in str(raised.value)
