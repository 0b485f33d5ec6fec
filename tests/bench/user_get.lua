-- GET /users/{random userId} over the 10,000 users (2 books each) the benchmark loads.
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/users/bench-" .. math.random(1, 10000))
end
