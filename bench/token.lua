-- Client-credentials token requests; CLIENT_ID and CLIENT_SECRET come from the environment.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=client_credentials&client_id=" .. os.getenv("CLIENT_ID") ..
  "&client_secret=" .. os.getenv("CLIENT_SECRET") .. (os.getenv("SCOPE") or "")
if os.getenv("BASIC") then
  wrk.headers["Authorization"] = "Basic " .. os.getenv("BASIC")
end
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
