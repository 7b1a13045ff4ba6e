-- GET one property of a site among 1,000, named by the Host (`s0500.localhost`).
dofile("bench/auth.lua")
wrk.headers["Host"] = "s0500.localhost"
wrk.path = "/rest/api/3/user/properties/bench.get?accountId=" .. account
