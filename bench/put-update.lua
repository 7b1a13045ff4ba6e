-- PUT over one existing property: every request is an update (200).
dofile("bench/auth.lua")
wrk.method = "PUT"
wrk.path = "/rest/api/3/user/properties/bench.update?accountId=" .. account
wrk.body = '{"theme": "dark", "sizes": [1, 2.50, null]}'
