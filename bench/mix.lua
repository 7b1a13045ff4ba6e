-- 90% GET, 10% PUT (updates) of one user's properties.
dofile("bench/auth.lua")
local get = "/rest/api/3/user/properties/bench.get?accountId=" .. account
local put = "/rest/api/3/user/properties/bench.update?accountId=" .. account
function request()
  if math.random() < 0.9 then
    return wrk.format("GET", get)
  end
  return wrk.format("PUT", put, nil, '{"theme": "light"}')
end
