-- GET /api/items/{random id}, each connection pausing between requests to
-- hold the rate near a target (wrk has no rate option). The pause is random,
-- 0 to 4 ms: wrk's timers tick in whole milliseconds, and a fixed pause kept
-- every connection that finished in one tick sending again in one later
-- tick, a wave of requests a millisecond instead of a stream.
math.randomseed(os.time() + 1)
request = function()
  return wrk.format("GET", "/api/items/" .. math.random(1, 10000))
end
delay = function()
  return math.random(0, 4)
end
