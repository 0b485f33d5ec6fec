-- GET /api/items/{random id}, each connection pausing 2 ms between requests,
-- to hold the rate near a target (wrk has no rate option).
math.randomseed(os.time() + 1)
request = function()
  return wrk.format("GET", "/api/items/" .. math.random(1, 10000))
end
delay = function()
  return 2
end
