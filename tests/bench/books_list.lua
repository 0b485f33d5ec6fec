-- GET /api/books?limit=20: the first page of the loaded catalogue.
request = function()
  return wrk.format("GET", "/api/books?limit=20")
end
