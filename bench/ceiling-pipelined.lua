-- The ceiling, pipelined ten deep.
local one = wrk.format("GET", "/healthz")
local batch = string.rep(one, 10)
function request()
  return batch
end
