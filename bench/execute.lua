-- wrk script: POST /api/workflows/:id/execute (the id is in wrk's URL) without
-- waiting; the server answers 202 {executionId, status: "queued"}.
-- BENCH_TOKEN: a bearer access token.
wrk.method = "POST"
wrk.body = '{"input":{"x":1}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
