-- POST /api/items: a write route (one insert, and its event when events are on).
request = function()
  return wrk.format("POST", "/api/items", {["Content-Type"] = "application/json"},
    '{"name":"bench","guide":"wrk","description":"a work item","status":"open"}')
end
