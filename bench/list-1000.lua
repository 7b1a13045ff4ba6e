-- List a user's 1,000 keys.
dofile("bench/auth.lua")
wrk.headers["Authorization"] = "Basic bGlzdDEwMDBAZXhhbXBsZS5jb206bGlzdDEwMDAtdG9rZW4="
wrk.path = "/rest/api/3/user/properties?accountId=bench-list-1000"
