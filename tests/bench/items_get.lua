-- GET /api/items/{random id} over the 10,000 items the benchmark loads.
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/items/" .. math.random(1, 10000))
end
