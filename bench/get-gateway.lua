-- GET one property of a site among 1,000, through the gateway form `/ex/jira/{cloudId}`.
dofile("bench/auth.lua")
wrk.path = "/ex/jira/00000000-0000-4000-8000-000000000500/rest/api/3/user/properties/bench.get?accountId=" .. account
