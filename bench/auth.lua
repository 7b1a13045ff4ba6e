-- Shared by every scenario: Bob's credentials and JSON headers.
wrk.headers["Authorization"] = "Basic Ym9iQGV4YW1wbGUuY29tOmJvYi10b2tlbg=="
wrk.headers["Content-Type"] = "application/json"
account = "5b10ac8d82e05b22cc7d4ef5"
