-- wrk script for bench/bench.sh: POSTs one form body with HTTP Basic client authentication, and
-- prints a one-line summary that bench.sh collects into its table.
--   BENCH_NAME  label in the summary      BENCH_PATH  e.g. /oauth2/token
--   BENCH_BODY  form-encoded body         BENCH_AUTH  base64 of client_id:client_secret
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH")
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. os.getenv("BENCH_AUTH")

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
