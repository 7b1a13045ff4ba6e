-- The mix, pipelined: each connection sends ten requests (nine GETs, one PUT) before it reads.
dofile("bench/auth.lua")
local get = wrk.format("GET", "/rest/api/3/user/properties/bench.get?accountId=" .. account)
local put = wrk.format("PUT", "/rest/api/3/user/properties/bench.update?accountId=" .. account, nil, '{"theme": "light"}')
local batch = string.rep(get, 9) .. put
function request()
  return batch
end
