-- Token introspection (RFC 7662) of TOKEN by the resource server RS_ID / RS_SECRET.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "token=" .. os.getenv("TOKEN") .. "&client_id=" .. os.getenv("RS_ID") ..
  "&client_secret=" .. os.getenv("RS_SECRET")
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
