-- 90% GET, 10% PUT (updates) of one user's properties: every tenth request is the PUT. The
-- requests are built once, so the load generator spends no time formatting them.
dofile("bench/auth.lua")
local get = wrk.format("GET", "/rest/api/3/user/properties/bench.get?accountId=" .. account)
local put = wrk.format("PUT", "/rest/api/3/user/properties/bench.update?accountId=" .. account, nil, '{"theme": "light"}')
local sent = 0
function request()
  sent = sent + 1
  if sent % 10 == 0 then
    return put
  end
  return get
end
