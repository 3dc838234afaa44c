-- wrk: GET /api/v1/sessions/:id (the path on the command line) with the key from ASTACK_KEY.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("ASTACK_KEY")
