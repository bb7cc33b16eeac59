-- wrk script for bench/soak.sh: a paced mix of token issuance, introspection, agent CRUD and
-- marketplace search, one connection per thread so that each response belongs to the request just
-- sent. Prints one RESULT line per run that soak.sh turns into a row of its table.
--   SOAK_AUTH   base64 of an agent's client_id:client_secret     SOAK_TOKEN  an access token
--   SOAK_ADMIN  the organization admin's bearer token            SOAK_DELAY_MS  pause per request
-- The mix, in percent: issue 40, introspect 30, create 8, get 6, patch 4, decommission 2, search 10.

local auth = os.getenv("SOAK_AUTH")
local token = os.getenv("SOAK_TOKEN")
local admin = os.getenv("SOAK_ADMIN")
local pause = tonumber(os.getenv("SOAK_DELAY_MS") or "10")

local ops = {
  { "issue", 40 }, { "introspect", 30 }, { "create", 8 }, { "get", 6 }, { "patch", 4 },
  { "decommission", 2 }, { "search", 10 },
}

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + id)
  agents = {}
  serial = 0
  last = nil
  counts = { issue = 0, introspect = 0, create = 0, get = 0, patch = 0, decommission = 0,
             search = 0, failed = 0 }
  form = { ["Content-Type"] = "application/x-www-form-urlencoded",
           ["Authorization"] = "Basic " .. auth }
  json = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. admin }
  bearer = { ["Authorization"] = "Bearer " .. admin }
end

local function pick()
  local roll, sum = math.random(100), 0
  for _, op in ipairs(ops) do
    sum = sum + op[2]
    if roll <= sum then return op[1] end
  end
  return "issue"
end

function request()
  local op = pick()
  if (op == "get" or op == "patch" or op == "decommission") and #agents == 0 then
    op = "create"
  end
  last = op
  counts[op] = counts[op] + 1
  if op == "issue" then
    return wrk.format("POST", "/oauth2/token", form,
      "grant_type=client_credentials&scope=read%3Adocs")
  elseif op == "introspect" then
    return wrk.format("POST", "/oauth2/introspect", form, "token=" .. token)
  elseif op == "create" then
    serial = serial + 1
    local body = string.format(
      '{"name":"soak-%d-%d","agent_type":"worker","capabilities":["read:docs"],"visibility":"public"}',
      id, serial)
    return wrk.format("POST", "/v1/agents", json, body)
  elseif op == "get" then
    return wrk.format("GET", "/v1/agents/" .. agents[math.random(#agents)], bearer)
  elseif op == "patch" then
    local body = string.format('{"version":"%d"}', math.random(1000))
    return wrk.format("PATCH", "/v1/agents/" .. agents[math.random(#agents)], json, body)
  elseif op == "decommission" then
    return wrk.format("DELETE", "/v1/agents/" .. table.remove(agents, math.random(#agents)),
      bearer)
  else
    return wrk.format("GET", "/v1/marketplace/agents?limit=20&q=soak-" .. math.random(9), nil)
  end
end

function response(status, headers, body)
  if status >= 400 then
    counts.failed = counts.failed + 1
  elseif last == "create" then
    local agent = body:match('"id":"([%x%-]+)"')
    if agent then table.insert(agents, agent) end
  end
end

function delay()
  return pause
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for k, v in pairs(c) do totals[k] = (totals[k] or 0) + v end
  end
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d rps=%.1f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f non2xx=%d socket_errors=%d " ..
    "issue=%d introspect=%d create=%d get=%d patch=%d decommission=%d search=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    errors.status, errors.connect + errors.read + errors.write + errors.timeout,
    totals.issue or 0, totals.introspect or 0, totals.create or 0, totals.get or 0,
    totals.patch or 0, totals.decommission or 0, totals.search or 0))
end
