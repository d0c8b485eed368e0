-- post.lua - the wrk script of bench/run.sh.
--
-- Every request is a POST of the JSON body in $BENCH_BODY, with the API key
-- of $BENCH_KEY as a bearer token. Requests are sent for $BENCH_ACTIVE_MS
-- milliseconds from each thread's first request; after that no request is
-- started and the ones in flight finish while wrk runs out its -d duration,
-- so every request the server saw is one wrk counted as complete.
--
-- done() prints one parseable line:
--   BENCH requests=N active_ms=N p50_us=N p90_us=N p99_us=N max_us=N
--         connect=N read=N write=N status=N timeout=N
-- where status counts responses with an HTTP status above 399.

local ffi = require("ffi")

ffi.cdef [[
struct bench_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk_id, struct bench_timespec *tp);
]]

local CLOCK_MONOTONIC = 1
local ts = ffi.new("struct bench_timespec")

-- Milliseconds on the monotonic clock.
local function now_ms()
	ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
	return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local active_ms = tonumber(os.getenv("BENCH_ACTIVE_MS") or "") or 10000
local key = os.getenv("BENCH_KEY") or ""

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
if key ~= "" then
	wrk.headers["Authorization"] = "Bearer " .. key
end

local deadline = nil

-- Milliseconds to wait before the next request: none while the thread is
-- active, a day once its time is up.
function delay()
	local t = now_ms()
	if deadline == nil then
		deadline = t + active_ms
	end
	if t < deadline then
		return 0
	end
	return 86400000
end

-- Prints the summary line.
function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
	    "BENCH requests=%d active_ms=%d p50_us=%d p90_us=%d p99_us=%d " ..
	    "max_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
	    summary.requests, active_ms, latency:percentile(50),
	    latency:percentile(90), latency:percentile(99), latency.max,
	    e.connect, e.read, e.write, e.status, e.timeout))
end
