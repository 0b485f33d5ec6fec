-- GET /ec2/{random id} over the 10,000 instances (5 packages each) the benchmark loads.
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/ec2/i-" .. math.random(1, 10000))
end
