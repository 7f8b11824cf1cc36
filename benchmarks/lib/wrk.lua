-- The wrk script of `npm run bench` (see lib/wrk.ts). Configured through the
-- environment because wrk decides whether requests are static before init()
-- sees its arguments:
--   BENCH_WRK_PATH     request path, e.g. /rmw
--   BENCH_WRK_COOKIES  a file with one Cookie header per line, or unset
-- One cookie (hot session, untouched) or none (fresh): a static request that
-- wrk formats once, the cheapest mode. Several cookies (many users): each
-- request takes the next one round-robin, so every session is hit evenly.
-- done() prints one JSON line the harness parses; statuses >= 400 are counted
-- by wrk itself (summary.errors.status) and reported as errors, not req/s.

local path = os.getenv("BENCH_WRK_PATH") or "/"
local file = os.getenv("BENCH_WRK_COOKIES")
local cookies = {}
if file and file ~= "" then
  for line in io.lines(file) do
    if line ~= "" then cookies[#cookies + 1] = line end
  end
end

wrk.method = "GET"
wrk.path = path
if #cookies == 1 then wrk.headers["Cookie"] = cookies[1] end

if #cookies > 1 then
  local n = #cookies
  local i = 0
  function setup(thread)
    -- Threads start at different offsets of the pool.
    thread:set("offset", math.random(n))
  end
  function init(args)
    i = offset or 0
  end
  function request()
    i = i % n + 1
    return wrk.format(nil, path, { ["Cookie"] = cookies[i] })
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nBENCH_WRK_JSON {"durationUs":%d,"requests":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50Us":%d,"p99Us":%d,"meanUs":%.1f}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
