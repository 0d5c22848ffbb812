-- wrk script: POST the signed real-sized deliveries of bench/deliveries.py, one per request.
-- POOL holds one "event<TAB>signature<TAB>body" per line (LuaJIT has no HMAC, so they are
-- signed beforehand); it is read as it goes, never held in memory, and starts over at its end
-- (the report says how many were sent, so a caller knows whether any repeated).
-- Only the delivery id varies per pass: GitHub does not sign that header.
local run = os.getenv("RUN_ID") or "run"
local pool = os.getenv("POOL")
local file = nil
local counter = 0

function init(args)
  file = assert(io.open(pool, "rb"))
end

local function next_line()
  local line = file:read("*l")
  if line == nil then
    file:seek("set", 0)
    line = file:read("*l")
  end
  return line
end

function request()
  counter = counter + 1
  local event, sig, body = next_line():match("^([^\t]+)\t([^\t]+)\t(.*)$")
  local headers = {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "GitHub-Hookshot/bench",
    ["X-GitHub-Event"] = event,
    ["X-GitHub-Delivery"] = string.format("%s-%d", run, counter),
    ["X-Hub-Signature-256"] = sig,
  }
  return wrk.format("POST", "/github/webhooks", headers, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    "JSON {\"requests\": %d, \"seconds\": %.3f, \"non2xx\": %d, \"socket_errors\": %d," ..
    " \"p50_ms\": %.2f, \"p99_ms\": %.2f}\n",
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
