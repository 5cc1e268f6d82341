-- Refresh-token rotation: each thread holds a pool of live refresh tokens (from the file
-- REFRESH_TOKENS, one per line, split between threads); a request takes one, its answer puts
-- the new one back. CLIENT_ID / CLIENT_SECRET name the password client.
local threads = {}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("slot", counter)
  table.insert(threads, thread)
end

function init(args)
  pool = {}
  local n = 0
  for line in io.lines(os.getenv("REFRESH_TOKENS")) do
    n = n + 1
    if n % tonumber(os.getenv("THREADS")) == slot - 1 then table.insert(pool, line) end
  end
  prefix = "grant_type=refresh_token&client_id=" .. os.getenv("CLIENT_ID") ..
    "&client_secret=" .. os.getenv("CLIENT_SECRET") .. "&refresh_token="
end

function request()
  local token = table.remove(pool) or "exhausted"
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"}, prefix .. token)
end

function response(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then table.insert(pool, token) end
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
