-- The one wrk script of scripts/bench.sh, configured from the environment:
--
--   BENCH_MODE=get       the URL, as is (the default)
--   BENCH_MODE=propfind  PROPFIND the URL with Depth: 1 and the body in
--                        BENCH_BODY (empty: no body, which means allprop)
--   BENCH_MODE=put       PUT a 4 KiB body to a new name under the URL (a
--                        collection ending in /) on every request
--
-- At the end it prints one line for bench.sh to parse:
--   WRK requests=N seconds=S bytes=B non2xx=N socket_errors=N
-- wrk counts a response with a status of 400 or more as a status error (its
-- "Non-2xx or 3xx responses"); bench.sh treats any of those, or any socket
-- error, as a failed figure. The expected status itself is checked once with
-- curl before each run.

local mode = os.getenv("BENCH_MODE") or "get"

if mode == "propfind" then
  wrk.method = "PROPFIND"
  wrk.headers["Depth"] = "1"
  local body = os.getenv("BENCH_BODY") or ""
  if body ~= "" then
    wrk.headers["Content-Type"] = "application/xml; charset=utf-8"
    wrk.body = body
  end
elseif mode == "put" then
  local body = string.rep("0123456789abcdef", 256)
  local counter = 0
  -- A dynamic request: wrk calls it for every request, so each PUT creates a
  -- new file (overwriting would measure something else). With several wrk
  -- threads each has its own Lua state, hence the thread id in the name
  -- (a global: thread:set writes the thread state's globals).
  thread_id = 0
  local threads = 0
  function setup(thread)
    threads = threads + 1
    thread:set("thread_id", threads)
  end
  function request()
    counter = counter + 1
    return wrk.format("PUT", wrk.path .. "t" .. thread_id .. "-" .. counter .. ".bin", nil, body)
  end
elseif mode ~= "get" then
  error("unknown BENCH_MODE " .. mode)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK requests=%d seconds=%.3f bytes=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration / 1e6, summary.bytes, e.status,
    e.connect + e.read + e.write + e.timeout))
end
