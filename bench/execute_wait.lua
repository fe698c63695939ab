-- wrk script: POST /api/workflows/:id/execute (the id is in wrk's URL) with
-- {"wait": true}; the server answers 200 with the ended execution.
-- BENCH_TOKEN: a bearer access token.
wrk.method = "POST"
wrk.body = '{"input":{"x":1},"wait":true}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
