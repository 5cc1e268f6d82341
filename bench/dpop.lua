-- GET requests with a DPoP-bound token (TOKEN) and a fresh proof each (RFC 9449 §7): the
-- proofs come from the file PROOFS, one per line, split between threads; a thread out of
-- proofs sends "exhausted", which the server refuses (counted as failed).
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("slot", counter)
end

function init(args)
  pool = {}
  local n = 0
  for line in io.lines(os.getenv("PROOFS")) do
    n = n + 1
    if n % tonumber(os.getenv("THREADS")) == slot - 1 then table.insert(pool, line) end
  end
  auth = "DPoP " .. os.getenv("TOKEN")
end

function request()
  local proof = table.remove(pool) or "exhausted"
  return wrk.format("GET", nil, {["Authorization"] = auth, ["DPoP"] = proof})
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
