#!/usr/bin/env bash
# The register-agent action: this job's GitHub OIDC token → a registration token through a trust
# policy with allow_registration → a new agent in that policy's organization.
set -euo pipefail
# shellcheck source=oidc.sh
source "$(dirname "${BASH_SOURCE[0]}")/oidc.sh"

api_url=${AGENTIDP_API_URL%/}
[[ -n "$api_url" ]] || fail "AgentIdP" "the api-url input is required"
[[ -n "${AGENTIDP_AGENT_NAME:-}" ]] || fail "AgentIdP" "the agent-name input is required"
audience=${AGENTIDP_AUDIENCE:-$api_url}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
github_oidc_token "$audience" "$work/oidc"
params=()
[[ -z "${AGENTIDP_ORG_ID:-}" ]] || params+=("org_id=$AGENTIDP_ORG_ID")
# (bash 3.2, as on macOS runners, calls an empty array unbound: expand it only when set)
status=$(exchange "$work/oidc" "$work/answer" ${params[@]+"${params[@]}"}) ||
  fail "AgentIdP" "cannot reach $api_url/oauth2/token"
[[ "$status" == 200 ]] || refused "$work/answer" "$status"
registration=$(json_field access_token <"$work/answer")
[[ -n "$registration" ]] || fail "AgentIdP" "the token endpoint answered without an access_token"
echo "::add-mask::$registration"

body="{\"name\":$(json_string "$AGENTIDP_AGENT_NAME"),\"agent_type\":$(json_string "${AGENTIDP_AGENT_TYPE:-ci}")"
if [[ -n "${AGENTIDP_AGENT_DESCRIPTION:-}" ]]; then
  body+=",\"metadata\":{\"description\":$(json_string "$AGENTIDP_AGENT_DESCRIPTION")}"
fi
body+="}"
printf 'Authorization: Bearer %s\n' "$registration" >"$work/headers"
status=$(curl -sS -o "$work/agent" -w '%{http_code}' -X POST -H @"$work/headers" \
  -H 'Content-Type: application/json' --data-binary "$body" "$api_url/v1/agents") ||
  fail "AgentIdP" "cannot reach $api_url/v1/agents (curl exit $?)"
if [[ "$status" != 201 ]]; then
  code=$(json_field code <"$work/agent")
  detail=$(json_field detail <"$work/agent")
  fail "AgentIdP registration refused" "HTTP $status ${code:-error}: ${detail:-$(head -c 300 "$work/agent")}"
fi
agent_id=$(json_field id <"$work/agent")
echo "agent-id=$agent_id" >>"$GITHUB_OUTPUT"
echo "AgentIdP: registered agent $agent_id ($AGENTIDP_AGENT_NAME)"
