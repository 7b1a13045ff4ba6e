-- PUT of keys never seen before: every request creates (201).
dofile("bench/auth.lua")
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("prefix", os.time() .. "-" .. math.random(1, 1000000000) .. "-" .. threads)
end
counter = 0
function request()
  counter = counter + 1
  local path = "/rest/api/3/user/properties/new-" .. prefix .. "-" .. counter .. "?accountId=" .. account
  return wrk.format("PUT", path, nil, '{"n": ' .. counter .. '}')
end
