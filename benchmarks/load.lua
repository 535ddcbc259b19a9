-- The wrk script of our own load runs (benchmarks/wrk.py): one request, sent again and
-- again, and a line of JSON at the end that wrk.py reads instead of wrk's text report.
--
--   wrk -t2 -c64 -d10s --latency -s load.lua URL [-- METHOD BODY]
--
-- Without METHOD the request is a GET of URL, query string included. wrk builds the
-- request once, after init(), so loading costs the client no Lua per request.

function init(args)
  if args[1] then
    wrk.method = args[1]
    wrk.body = args[2]
    wrk.headers["Content-Type"] = "application/json"
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'LOAD_JSON {"requests":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
