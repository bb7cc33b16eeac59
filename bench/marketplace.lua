-- wrk script for bench/marketplace.sh: GETs one marketplace path and prints a one-line summary.
--   BENCH_NAME  label in the summary      BENCH_PATH  e.g. /v1/marketplace/agents?q=weather
wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH")

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
