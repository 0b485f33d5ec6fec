-- A lend + return cycle: each wrk thread has one connection and its own book
-- (BookID = thread number), so its PUT and DELETE strictly alternate.
-- Run with -t N -c N; one cycle is two requests. The next method follows
-- the last answer, not a count of calls: wrk calls request() once more
-- than it sends, which made one thread start with a DELETE (one 404).
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("book", counter)
end
local lent = false
request = function()
  return wrk.format(lent and "DELETE" or "PUT", "/api/lending/" .. book .. "/1")
end
response = function(status)
  if status == 200 then lent = not lent end
end
