# Shared by the AgentIdP actions (sourced): the job's GitHub OIDC token, its exchange at the token
# endpoint, and reading JSON answers with jq or, without it, sed.

# json_field NAME: the string or number NAME of the JSON object on stdin (empty when absent).
json_field() {
  if command -v jq >/dev/null 2>&1; then
    jq -r --arg name "$1" '.[$name] // empty | tostring'
  else
    sed -n -e "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\\(\\([^\"\\\\]\\|\\\\.\\)*\\)\".*/\\1/p" \
      -e "s/.*\"$1\"[[:space:]]*:[[:space:]]*\\([0-9][0-9]*\\).*/\\1/p" | head -n 1
  fi
}

# json_string TEXT: TEXT as a JSON string literal.
json_string() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\r'/\\r}; s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}

# fail TITLE MESSAGE: a workflow error annotation, then exit.
fail() {
  echo "::error title=$1::$2"
  exit 1
}

# github_oidc_token AUDIENCE FILE: writes the job's OIDC token for AUDIENCE to FILE, masked first.
github_oidc_token() {
  if [[ -z "${ACTIONS_ID_TOKEN_REQUEST_URL:-}" || -z "${ACTIONS_ID_TOKEN_REQUEST_TOKEN:-}" ]]; then
    fail "AgentIdP" "no GitHub OIDC token is available to this job: add 'permissions: id-token: write' to the workflow or job"
  fi
  local answer status
  answer=$(mktemp)
  status=$(curl -sS -o "$answer" -w '%{http_code}' --get --data-urlencode "audience=$1" \
    -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" "$ACTIONS_ID_TOKEN_REQUEST_URL") ||
    fail "AgentIdP" "requesting the GitHub OIDC token failed (curl exit $?)"
  if [[ "$status" != 200 ]]; then
    fail "AgentIdP" "requesting the GitHub OIDC token failed with HTTP $status"
  fi
  local token
  token=$(json_field value <"$answer")
  rm -f "$answer"
  [[ -n "$token" ]] || fail "AgentIdP" "the GitHub OIDC token answer had no value"
  echo "::add-mask::$token"
  printf '%s' "$token" >"$2"
}

# exchange TOKEN_FILE BODY_FILE [NAME=VALUE...]: RFC 8693 token exchange of the OIDC token in
# TOKEN_FILE at $api_url; the answer lands in BODY_FILE; prints the HTTP status, fails as curl
# does. The token goes in a file, never on a command line other processes could read.
exchange() {
  local token_file=$1 body=$2
  shift 2
  local args=(--data-urlencode "grant_type=urn:ietf:params:oauth:grant-type:token-exchange"
    --data-urlencode "subject_token@$token_file"
    --data-urlencode "subject_token_type=urn:ietf:params:oauth:token-type:id_token")
  local pair
  for pair in "$@"; do args+=(--data-urlencode "$pair"); done
  curl -sS -o "$body" -w '%{http_code}' -X POST "${args[@]}" "$api_url/oauth2/token"
}

# refused BODY_FILE STATUS: the server's explanation of a refused exchange, as an error.
refused() {
  local error description
  error=$(json_field error <"$1")
  description=$(json_field error_description <"$1")
  fail "AgentIdP token exchange refused" "HTTP $2 ${error:-error}: ${description:-$(head -c 300 "$1")}"
}
