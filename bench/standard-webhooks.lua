-- wrk script: every request is a 1 KiB JSON event with its own id, signed the Standard
-- Webhooks way (webhook-id, webhook-timestamp, webhook-signature: v1,base64(HMAC-SHA256(
-- key, id.timestamp.body)))), so no request is a duplicate and every one verifies.
-- HMAC comes from the libcrypto wrk itself links, through LuaJIT's FFI: signing in Lua
-- would make wrk the bottleneck on a 2-core machine.
--
-- Environment: BENCH_KEY (the raw key; the servers get whsec_ + base64 of it), BENCH_PATH,
-- BENCH_RUN (makes ids unique across runs), BENCH_DELAY_MS (pause before each request on a
-- connection: the paced half-load run), BENCH_RESULT (a JSON file the summary goes to).
local ffi = require("ffi")
ffi.cdef [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *md, const void *key, int key_len, const unsigned char *data,
                    size_t data_len, unsigned char *out, unsigned int *out_len);
int EVP_EncodeBlock(unsigned char *t, const unsigned char *f, int n);
]]
local ok, crypto = pcall(function() local _ = ffi.C.EVP_sha256; return ffi.C end)
if not ok then crypto = ffi.load("libcrypto.so.3") end

local key = os.getenv("BENCH_KEY") or "bench-secret"
local path = os.getenv("BENCH_PATH") or "/"
local run = os.getenv("BENCH_RUN") or tostring(os.time())
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local result_file = os.getenv("BENCH_RESULT")

local digest = ffi.new("unsigned char[32]")
local digest_len = ffi.new("unsigned int[1]")
local encoded = ffi.new("unsigned char[48]")

local function sign(content)
  crypto.HMAC(crypto.EVP_sha256(), key, #key, content, #content, digest, digest_len)
  local n = crypto.EVP_EncodeBlock(encoded, digest, 32)
  return ffi.string(encoded, n)
end

-- The part of the body after the id, padded so a whole body is 1024 bytes.
local head = '{"type":"invoice.paid","id":"'
local tail_start = '","data":{"object":"invoice","amount_due":4200,"currency":"eur","pad":"'
local tail_end = '"}}'

local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local counter = 0
local pad
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local id_len = #("msg_" .. run .. "_" .. tid .. "_") + 9
  pad = string.rep("x", 1024 - #head - id_len - #tail_start - #tail_end)
end

function request()
  counter = counter + 1
  local id = string.format("msg_%s_%d_%09d", run, tid, counter)
  local timestamp = tostring(os.time())
  local body = head .. id .. tail_start .. pad .. tail_end
  wrk.headers["webhook-id"] = id
  wrk.headers["webhook-timestamp"] = timestamp
  wrk.headers["webhook-signature"] = "v1," .. sign(id .. "." .. timestamp .. "." .. body)
  return wrk.format(nil, path, nil, body)
end

if delay_ms > 0 then
  function delay() return delay_ms end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  local line = string.format(
    '{"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, errors.status, errors.connect + errors.read + errors.write + errors.timeout)
  if result_file then
    local f = assert(io.open(result_file, "w"))
    f:write(line)
    f:close()
  else
    io.write(line)
  end
end
