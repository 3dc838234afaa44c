-- GET /api/v1/sessions with a different key each request, cycling through the keys of the
-- file KEYS_FILE (one per line), from a random place in each wrk thread.
local keys = {}
for line in io.lines(os.getenv("KEYS_FILE")) do keys[#keys + 1] = line end
local i = math.random(#keys)
request = function()
  i = i % #keys + 1
  return wrk.format("GET", "/api/v1/sessions", { ["Authorization"] = "Bearer " .. keys[i] })
end
