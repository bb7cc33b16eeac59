#!/usr/bin/env bash
# The issue-token action: this job's GitHub OIDC token → an AgentIdP access token for an agent.
set -euo pipefail
# shellcheck source=oidc.sh
source "$(dirname "${BASH_SOURCE[0]}")/oidc.sh"

api_url=${AGENTIDP_API_URL%/}
[[ -n "$api_url" ]] || fail "AgentIdP" "the api-url input is required"
[[ -n "${AGENTIDP_AGENT_ID:-}" ]] || fail "AgentIdP" "the agent-id input is required"
audience=${AGENTIDP_AUDIENCE:-$api_url}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
github_oidc_token "$audience" "$work/oidc"
params=("agent_id=$AGENTIDP_AGENT_ID")
[[ -z "${AGENTIDP_SCOPE:-}" ]] || params+=("scope=$AGENTIDP_SCOPE")
status=$(exchange "$work/oidc" "$work/answer" "${params[@]}") ||
  fail "AgentIdP" "cannot reach $api_url/oauth2/token"
[[ "$status" == 200 ]] || refused "$work/answer" "$status"

access_token=$(json_field access_token <"$work/answer")
[[ -n "$access_token" ]] || fail "AgentIdP" "the token endpoint answered without an access_token"
echo "::add-mask::$access_token"
expires_in=$(json_field expires_in <"$work/answer")
scope=$(json_field scope <"$work/answer")
expires=$(($(date +%s) + ${expires_in:-0}))
expires_at=$(date -u -d "@$expires" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$expires" +%Y-%m-%dT%H:%M:%SZ)
{
  echo "access-token=$access_token"
  echo "expires-at=$expires_at"
} >>"$GITHUB_OUTPUT"
echo "AgentIdP: a token for agent $AGENTIDP_AGENT_ID (scope: ${scope:-none}), valid until $expires_at"
