-- GET one property.
dofile("bench/auth.lua")
wrk.path = "/rest/api/3/user/properties/bench.get?accountId=" .. account
