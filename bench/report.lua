-- Shared by the wrk scripts of bench/run.sh: one machine-readable line at the end,
--   RESULT <requests/s> <p50 ms> <p99 ms> <failed>
-- where failed counts non-2xx answers and socket errors.
function done(summary, latency, requests)
  local e = summary.errors
  local failed = e.status + e.connect + e.read + e.write + e.timeout
  io.write(string.format("RESULT %.0f %.3f %.3f %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, failed))
end
