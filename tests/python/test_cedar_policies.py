"""The server's Cedar decisions against an independent engine: the same policies and requests,
decided by the Python `cedarpy` package (Cedar's own Rust engine behind a separate binding), must
give the same decision and the same determining policies for every scope.

The entities and context are built here from the rules the README states for policies (an agent's
attributes, a workflow's claims, the audience as the resource), not taken from the server.

    AGENTIDP_BASE_URL=http://127.0.0.1:8787 pytest tests/python/test_cedar_policies.py
"""

import os
import uuid

import cedarpy
import pytest
import requests

BASE = os.environ.get("AGENTIDP_BASE_URL", "http://127.0.0.1:8787").rstrip("/")
TIMEOUT = 10

POLICIES = [
    # Reading docs anywhere.
    'permit(principal, action, resource) when { context.scope == "read:docs" };',
    # Payments only for the payment API, only for trusted agents.
    'permit(principal is AgentIdP::Agent, action == AgentIdP::Action::"issue_token",'
    ' resource == AgentIdP::Audience::"https://pay.example")'
    ' when { context.scope == "payments:write" && principal.tags.contains("trusted") };',
    # Never payments from development.
    '@reason("no payments from development")'
    ' forbid(principal is AgentIdP::Agent, action, resource)'
    ' when { context.scope == "payments:write" && principal.deployment_env == "development" };',
    # Long-lived tokens need a bound key.
    'forbid(principal, action, resource)'
    ' when { context.lifetime_seconds > 600 && !context.key_bound && context.scope like "deploy:*" };',
    # Workflows deploy from main only.
    'permit(principal is AgentIdP::Workflow, action == AgentIdP::Action::"exchange_token", resource)'
    ' when { principal.ref == "refs/heads/main" && context.scope like "deploy:*" };',
]


def bootstrap():
    response = requests.post(
        f"{BASE}/v1/orgs", json={"name": f"cedar-{uuid.uuid4().hex[:8]}"}, timeout=TIMEOUT
    )
    assert response.status_code == 201, response.text
    admin = response.json()["admin_credential"]
    token = requests.post(
        f"{BASE}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(admin["client_id"], admin["client_secret"]),
        timeout=TIMEOUT,
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def org():
    headers = bootstrap()
    ids = []
    for text in POLICIES:
        response = requests.post(
            f"{BASE}/v1/policies", json={"cedar": text}, headers=headers, timeout=TIMEOUT
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    agents = {}
    for name, env, tags in [
        ("prod-payer", "production", ["trusted"]),
        ("dev-payer", "development", ["trusted"]),
        ("untagged", "production", []),
    ]:
        response = requests.post(
            f"{BASE}/v1/agents",
            json={
                "name": name,
                "agent_type": "service",
                "capabilities": ["payments:write", "read:docs", "deploy:prod"],
                "deployment_env": env,
                "owner": "team-a",
                "metadata": {"tags": tags},
            },
            headers=headers,
            timeout=TIMEOUT,
        )
        assert response.status_code == 201, response.text
        agents[name] = response.json()
    return {"headers": headers, "policy_ids": ids, "agents": agents}


def agent_entity(agent):
    tags = agent.get("metadata", {}).get("tags", [])
    return {
        "uid": {"type": "AgentIdP::Agent", "id": agent["id"]},
        "attrs": {
            "id": agent["id"],
            "agent_type": agent["agent_type"],
            "capabilities": agent["capabilities"],
            "deployment_env": agent["deployment_env"],
            "owner": agent.get("owner") or "",
            "tags": [t for t in tags if isinstance(t, str)],
        },
        "parents": [],
    }


def workflow_entity(claims):
    attrs = {
        key: claims.get(key, "")
        for key in ["repository", "repository_id", "ref", "environment", "event_name", "job_workflow_ref"]
    }
    return {"uid": {"type": "AgentIdP::Workflow", "id": attrs["repository"]}, "attrs": attrs, "parents": []}


def cedarpy_decisions(principal, action, audience, scopes, context, policy_ids):
    entities = [principal, {"uid": {"type": "AgentIdP::Audience", "id": audience}, "attrs": {}, "parents": []}]
    uid = principal["uid"]
    decisions = []
    for scope in scopes:
        result = cedarpy.is_authorized(
            {
                "principal": f'{uid["type"]}::"{uid["id"]}"',
                "action": f'AgentIdP::Action::"{action}"',
                "resource": f'AgentIdP::Audience::"{audience}"',
                "context": {**context, "scope": scope},
            },
            "\n".join(POLICIES),
            entities,
        )
        assert not result.diagnostics.errors, result.diagnostics.errors
        # cedarpy names the statements policy0, policy1, ... in order: map back to the ids.
        determining = sorted(policy_ids[int(r.removeprefix("policy"))] for r in result.diagnostics.reasons)
        decisions.append((scope, "allow" if result.allowed else "deny", determining))
    return decisions


CONTEXTS = [
    {"grant_type": "client_credentials", "client_auth_method": "client_secret_basic", "now": 1700000000,
     "client_ip": "127.0.0.1", "key_bound": False, "lifetime_seconds": 3600},
    {"grant_type": "client_credentials", "client_auth_method": "private_key_jwt", "now": 1700000000,
     "client_ip": "10.0.0.1", "key_bound": True, "lifetime_seconds": 3600},
    {"grant_type": "client_credentials", "client_auth_method": "client_secret_post", "now": 1700000000,
     "client_ip": "127.0.0.1", "key_bound": False, "lifetime_seconds": 300},
]
SCOPES = ["read:docs", "payments:write", "deploy:prod", "unknown:scope"]
AUDIENCES = ["https://pay.example", "https://api.example"]


def server_decisions(org, body):
    response = requests.post(f"{BASE}/v1/policies/evaluate", json=body, headers=org["headers"], timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return [(d["scope"], d["decision"], sorted(d["policies"])) for d in response.json()["decisions"]]


@pytest.mark.parametrize("agent_name", ["prod-payer", "dev-payer", "untagged"])
@pytest.mark.parametrize("audience", AUDIENCES)
@pytest.mark.parametrize("context", range(len(CONTEXTS)))
def test_agents_are_decided_as_cedarpy_decides(org, agent_name, audience, context):
    agent = org["agents"][agent_name]
    for action in ["issue_token", "exchange_token"]:
        body = {"agent_id": agent["id"], "scopes": SCOPES, "audience": audience,
                "action": action, "context": CONTEXTS[context]}
        expected = cedarpy_decisions(agent_entity(agent), action, audience, SCOPES, CONTEXTS[context], org["policy_ids"])
        assert server_decisions(org, body) == expected


@pytest.mark.parametrize("ref", ["refs/heads/main", "refs/heads/feature"])
def test_workflows_are_decided_as_cedarpy_decides(org, ref):
    claims = {"repository": "octo/app", "repository_id": "111", "ref": ref, "environment": "prod",
              "event_name": "push", "job_workflow_ref": "octo/app/.github/workflows/deploy.yml@" + ref}
    context = {**CONTEXTS[2], "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
               "client_auth_method": "none"}
    body = {"workflow": claims, "scopes": SCOPES, "audience": "https://api.example",
            "action": "exchange_token", "context": context}
    expected = cedarpy_decisions(workflow_entity(claims), "exchange_token", "https://api.example", SCOPES, context,
                                 org["policy_ids"])
    decided = server_decisions(org, body)
    assert decided == expected
    # Not vacuous: the branch decides deployment.
    deploy = {scope: decision for scope, decision, _ in decided}["deploy:prod"]
    assert deploy == ("allow" if ref == "refs/heads/main" else "deny")
