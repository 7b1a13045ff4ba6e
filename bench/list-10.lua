-- List a user's 10 keys.
dofile("bench/auth.lua")
wrk.headers["Authorization"] = "Basic bGlzdDEwQGV4YW1wbGUuY29tOmxpc3QxMC10b2tlbg=="
wrk.path = "/rest/api/3/user/properties?accountId=bench-list-10"
