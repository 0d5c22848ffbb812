-- wrk script: POST signed `status` deliveries, each with a unique X-GitHub-Delivery.
-- The bodies and their signatures are prepared by bench/ingest.py (one "signature<TAB>body" per
-- line in BODIES) because LuaJIT has no HMAC; only the delivery id varies per request, and
-- GitHub does not sign that header.
local bodies = {}
local threads = {}
local counter = 0
local run = os.getenv("RUN_ID") or "run"

for line in io.lines(os.getenv("BODIES")) do
  local sig, body = line:match("^([^\t]+)\t(.*)$")
  bodies[#bodies + 1] = {sig = sig, body = body}
end

function setup(thread)
  thread:set("tid", #threads + 1)
  threads[#threads + 1] = thread
end

function request()
  counter = counter + 1
  local item = bodies[(counter % #bodies) + 1]
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "status",
    ["X-GitHub-Delivery"] = string.format("%s-%d-%d", run, tid, counter),
    ["X-Hub-Signature-256"] = item.sig,
  }
  return wrk.format("POST", "/github/webhooks", headers, item.body)
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format(
    "JSON {\"requests\": %d, \"seconds\": %.3f, \"non2xx\": %d, \"socket_errors\": %d," ..
    " \"p50_ms\": %.2f, \"p99_ms\": %.2f}\n",
    summary.requests, summary.duration / 1e6, non2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
