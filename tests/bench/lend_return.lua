-- A lend + return cycle: each wrk thread has one connection and its own book
-- (BookID = thread number), so its PUT and DELETE strictly alternate.
-- Run with -t N -c N; one cycle is two requests.
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("book", counter)
end
local n = 0
request = function()
  n = n + 1
  local method = (n % 2 == 1) and "PUT" or "DELETE"
  return wrk.format(method, "/api/lending/" .. book .. "/1")
end
