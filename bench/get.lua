-- GET requests with the headers given on the command line (-H).
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
