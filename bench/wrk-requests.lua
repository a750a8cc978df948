-- wrk script for the load benchmark. Requests vary x-user-id, x-geo-region and x-geo-city so that sluice
-- makes real decisions (both cohorts, region and city cutoffs, missing identity). They are built once in
-- init() and cycled, so wrk's own cost per request is the same whichever proxy it loads.
local regions = {"eu-south", "eu-south", "eu-south", "EU-South", "eu-west", "us-east"}
local cities = {"faro", "porto", "Porto", "lisbon", "cork", "dublin", "nowhere"}
local pool = {}
local position = 0

function init(args)
  math.randomseed(20261122)
  for i = 1, 2000 do
    local headers = {}
    if math.random(100) > 5 then headers["x-user-id"] = "user-" .. math.random(1, 10000000) end
    if math.random(100) > 10 then headers["x-geo-region"] = regions[math.random(#regions)] end
    if math.random(100) > 5 then headers["x-geo-city"] = cities[math.random(#cities)] end
    pool[i] = wrk.format("GET", "/shop/item/" .. math.random(1, 100000), headers)
  end
end

-- WRK_DELAY_MS (the load benchmark's latency phase): each connection waits that long between its
-- requests, so the proxy runs below saturation and a request's latency is the proxy's work, not a
-- queue. Defined only then, since wrk paces every request of a script that has a delay().
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "")
if pause then
  function delay()
    return pause
  end
end

function request()
  position = position % #pool + 1
  return pool[position]
end

-- One machine-readable line for scripts/bench.sh; latency percentiles are in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%.0f duration_us=%.0f p50_us=%.0f p99_us=%.0f non2xx=%.0f socket_errors=%.0f\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
