-- wrk script for bench/marketplace.sh: GETs one marketplace path and prints a one-line summary.
--   BENCH_NAME  label in the summary      BENCH_PATH  e.g. /v1/marketplace/agents?q=weather
--   BENCH_IDS   optional file of agent ids, one a line: each request then takes the next id and
--               puts it for `{id}` in BENCH_PATH (so a memo of signed cards mostly misses)
wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH")
local ids = {}
local ids_file = os.getenv("BENCH_IDS")
if ids_file and ids_file ~= "" then
  for line in io.lines(ids_file) do ids[#ids + 1] = line end
end
local next_id = math.random(1, math.max(#ids, 1))

function request()
  if #ids == 0 then return wrk.format() end
  next_id = next_id % #ids + 1
  return wrk.format(nil, (wrk.path:gsub("{id}", ids[next_id])))
end

function done(summary, latency, requests)
  local errors = summary.errors
  local socket_errors = errors.connect + errors.read + errors.write + errors.timeout
  io.write(string.format(
    "RESULT %s requests=%d rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f non2xx=%d socket_errors=%d\n",
    os.getenv("BENCH_NAME"),
    summary.requests,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000,
    latency:percentile(90) / 1000,
    latency:percentile(99) / 1000,
    latency.max / 1000,
    errors.status,
    socket_errors))
end
