-- wrk: POST /api/v1/sessions with the seed's body and the key from ASTACK_KEY.
wrk.method = "POST"
wrk.body = '{"end_user_id": "user_123", "connection_type": "websocket", "quality": "high", "features": ["vision", "transcription"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("ASTACK_KEY")

-- Count statuses, so that a run full of errors is not taken for a fast one.
local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
