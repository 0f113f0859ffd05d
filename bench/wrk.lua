-- wrk script of the benchmarks (bench/machine.py runs it).
--   wrk ... -s bench/wrk.lua http://127.0.0.1:PORT/v1/events -- single
--   wrk ... -s bench/wrk.lua http://127.0.0.1:PORT/v1/events -- batch 1000
--   wrk ... -s bench/wrk.lua http://127.0.0.1:PORT/ -- get FILE   (one path per line)
-- The bearer token comes from $BENCH_TOKEN. Requests are built once in init(), so the client
-- does no work per request beyond sending bytes. Events carry no id: the server makes one,
-- so every request appends new events. Companies vary over 100 slugs. `get` sends GETs of
-- the file's paths in turn.

local COMPANIES = 100
local requests = {}
local counter = 0

local function event(n)
  return '{"type":"model.launched","company":"bench-' .. (n % COMPANIES) .. '",'
    .. '"occurred":"2023-05","data":{"model":"Model X ' .. n .. '","stage":"public",'
    .. '"modality":["text","image"]},'
    .. '"source":{"publisher":"Bench Daily","title":"Model X ships",'
    .. '"url":"https://example.com/news/model-x","published":"2023-05-14",'
    .. '"quote":"The company said Model X is now available to the public."},'
    .. '"confidence":"confirmed"}'
end

function init(args)
  local mode = args[1] or "single"
  local headers = {
    ["Content-Type"] = mode ~= "get" and "application/json" or nil,
    ["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or ""),
    ["Host"] = wrk.headers["Host"],
  }
  if mode == "get" then
    for path in io.lines(args[2]) do
      requests[#requests + 1] = wrk.format("GET", path, headers)
    end
  elseif mode == "batch" then
    local size = tonumber(args[2] or "1000")
    -- A few distinct batch bodies, each spreading its events over all companies.
    for b = 0, 3 do
      local parts = {}
      for i = 1, size do
        parts[i] = event(b * size + i)
      end
      local body = '{"events":[' .. table.concat(parts, ",") .. ']}'
      requests[b + 1] = wrk.format("POST", nil, headers, body)
    end
  else
    for n = 0, COMPANIES - 1 do
      requests[n + 1] = wrk.format("POST", nil, headers, event(n))
    end
  end
end

function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end

function done(summary, latency, requests_)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)
  ))
end
