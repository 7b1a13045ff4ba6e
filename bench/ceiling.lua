-- The ceiling: the same binary's /healthz, no I/O behind it.
wrk.path = "/healthz"
