"""A signed A2A Agent Card checked by code that is not the server's: RFC 8785 canonicalisation by
`rfc8785`, the detached JWS verified by `joserfc` with the key found by `kid` in the JWKS the
header's `jku` names, and the card read by the official A2A SDK's `AgentCard` model.

    AGENTIDP_BASE_URL=http://127.0.0.1:8787 pytest tests/python/test_agent_card.py
"""

import base64
import json
import os
import uuid

import pytest
import requests
import rfc8785
from a2a.types import AgentCard
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

BASE = os.environ.get("AGENTIDP_BASE_URL", "http://127.0.0.1:8787").rstrip("/")
TIMEOUT = 10


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def card():
    """Publishes an agent (with text JCS must escape and sort carefully) and fetches its card."""
    org = requests.post(
        f"{BASE}/v1/orgs", json={"name": f"cards-{uuid.uuid4().hex[:8]}"}, timeout=TIMEOUT
    )
    assert org.status_code == 201, org.text
    admin = org.json()["admin_credential"]
    token = requests.post(
        f"{BASE}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(admin["client_id"], admin["client_secret"]),
        timeout=TIMEOUT,
    ).json()["access_token"]
    agent = requests.post(
        f"{BASE}/v1/agents",
        headers={"authorization": f"Bearer {token}"},
        json={
            "name": "Übersetzer \u20ac \U0001F600 \"quoted\" \\ back",
            "agent_type": "nlp",
            "version": "1.0.0",
            "visibility": "public",
            "capabilities": ["docs:read", "zeta:write", "alpha:read"],
            "description": "Translates <documents> & more: 日本語, français.",
            "a2a_url": "https://translator.example/a2a",
            "skills": [
                {
                    "id": "translate",
                    "name": "Translate",
                    "description": "Any pair of languages",
                    "tags": ["nlp", "i18n"],
                    "examples": ["Translate 'hello' to French"],
                }
            ],
        },
        timeout=TIMEOUT,
    )
    assert agent.status_code == 201, agent.text
    agent_id = agent.json()["id"]
    response = requests.get(
        f"{BASE}/v1/marketplace/agents/{agent_id}/agent-card.json", timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    return response.json()


def verify(card: dict, canonical: bytes) -> dict:
    """Verifies the card's first signature over `canonical`; returns its protected header."""
    signature = card["signatures"][0]
    header = json.loads(b64url_decode(signature["protected"]))
    assert header["alg"] == "ES256"
    assert header["typ"] == "JOSE"
    assert header["jku"] == f"{BASE}/.well-known/jwks.json"
    jwks = requests.get(header["jku"], timeout=TIMEOUT).json()
    key = KeySet.import_key_set(jwks).get_by_kid(header["kid"])
    # RFC 7515 Appendix F: reattach the detached payload to verify.
    compact = f"{signature['protected']}.{b64url(canonical)}.{signature['signature']}"
    jws.deserialize_compact(compact, key, algorithms=["ES256"])
    return header


def without_signatures(card: dict) -> dict:
    return {name: value for name, value in card.items() if name != "signatures"}


def test_the_signature_verifies_over_the_rfc8785_form_with_a_jwks_key(card):
    header = verify(card, rfc8785.dumps(without_signatures(card)))
    assert header["kid"]


def test_a_changed_byte_fails(card):
    canonical = rfc8785.dumps(without_signatures(card))
    for position in (0, len(canonical) // 2, len(canonical) - 1):
        tampered = bytearray(canonical)
        tampered[position] ^= 0x01
        with pytest.raises(BadSignatureError):
            verify(card, bytes(tampered))
    changed = without_signatures(card)
    changed["url"] = "https://impostor.example/a2a"
    with pytest.raises(BadSignatureError):
        verify(card, rfc8785.dumps(changed))


def test_the_official_a2a_sdk_reads_the_card(card):
    parsed = AgentCard.model_validate(card)
    assert parsed.name == card["name"]
    assert parsed.url == "https://translator.example/a2a"
    assert parsed.signatures and parsed.signatures[0].protected == card["signatures"][0]["protected"]
    scheme = parsed.security_schemes["agentidp"].root
    assert scheme.flows.client_credentials.token_url == f"{BASE}/oauth2/token"
    assert set(scheme.flows.client_credentials.scopes) == {"docs:read", "zeta:write", "alpha:read"}
    assert [skill.id for skill in parsed.skills] == ["translate"]
