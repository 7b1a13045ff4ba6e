"""The benchmark harness: starts the release binary, loads it with wrk, and reports.

Run through bench/run.sh, which installs wrk and builds the binary. Standard library only.
"""

import argparse
import base64
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import http.client
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = Path(os.environ.get("JIRA_USERPROPS_BIN") or ROOT / "target" / "release" / "jira-userprops").resolve()
BOB = "5b10ac8d82e05b22cc7d4ef5"
SCENARIOS = [
    ("ceiling", "GET /healthz (no I/O): the ceiling"),
    ("get", "GET property"),
    ("put-update", "PUT update (200), durable"),
    ("put-create", "PUT create (201, new keys), durable"),
    ("list-10", "list keys (10)"),
    ("list-1000", "list keys (1,000)"),
    ("mix", "90% GET / 10% PUT"),
]


def seed_file(directory):
    users = [
        {"accountId": BOB, "email": "bob@example.com", "displayName": "Bob", "apiTokens": ["bob-token"]},
        {"accountId": "bench-list-10", "email": "list10@example.com", "apiTokens": ["list10-token"]},
        {"accountId": "bench-list-1000", "email": "list1000@example.com", "apiTokens": ["list1000-token"]},
    ]
    properties = [
        {"accountId": BOB, "key": "bench.get", "value": {"theme": "dark", "sizes": [1, 2.5, None]}},
        {"accountId": BOB, "key": "bench.update", "value": {"theme": "dark"}},
    ]
    for count in (10, 1000):
        properties += [
            {"accountId": f"bench-list-{count}", "key": f"key.{i:05}", "value": {"i": i}} for i in range(count)
        ]
    path = Path(directory) / "seed.json"
    path.write_text(json.dumps({"users": users, "properties": properties}))
    return path


def site_seed(index, users, properties):
    """A site's part of a seed: Bob (with `bench.get`) and `users - 1` others, `properties` in all."""
    people = [{"accountId": BOB, "email": "bob@example.com", "displayName": "Bob", "apiTokens": ["bob-token"]}]
    people += [{"accountId": f"user-{index}-{u}", "email": f"user{u}@site{index}.example"} for u in range(1, users)]
    values = [{"accountId": BOB, "key": "bench.get", "value": {"theme": "dark", "sizes": [1, 2.5, None]}}]
    values += [{"accountId": BOB, "key": f"key.{p:03}", "value": {"p": p}} for p in range(1, properties)]
    return {"users": people, "properties": values}


def many_sites_file(directory, sites, users):
    """The default site as in `seed_file`, and `sites` more of `users` users each; site 500 has a
    cloudId the gateway script names."""
    document = json.loads(seed_file(directory).read_text())
    document["sites"] = [
        {"name": f"s{i:04}", "id": f"00000000-0000-4000-8000-{i:012}", **site_seed(i, users, 1)} for i in range(sites)
    ]
    path = Path(directory) / "many-sites.json"
    path.write_text(json.dumps(document))
    return path


def admin_call(port, method, path, body=None):
    """One admin request; its latency in ms."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Authorization": "Bearer bench-admin", "Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


def site_lifecycle(database_url, count):
    """Creating a site with 5 users and 20 properties, then deleting it: p50 and p99 in ms, as a
    client one request at a time sees them (Python's HTTP client included)."""
    server = Server(database_url, extra=("--admin-token", "bench-admin"))
    run = f"{os.getpid()}-{int(time.time())}"
    creates = [admin_call(server.port, "POST", "/_admin/sites", {"name": f"b{run}-{i}", "seed": site_seed(i, 5, 20)})
               for i in range(count)]
    deletes = [admin_call(server.port, "DELETE", f"/_admin/sites/b{run}-{i}") for i in range(count)]
    server.stop()
    quantiles = lambda times: (statistics.median(times), statistics.quantiles(times, n=100)[98] if len(times) > 1 else times[0])
    return {"create": quantiles(creates), "delete": quantiles(deletes)}


def many_sites_with_app(directory):
    """The 1,000-site seed with the OAuth 2.0 app `bench-app`, which consents automatically."""
    document = json.loads(many_sites_file(directory, 1000, 10).read_text())
    document["apps"] = [{"name": "Bench app", "kind": "oauth2", "clientId": "bench-app", "clientSecret": "bench-secret",
                         "callbackUrl": "http://127.0.0.1:9/callback", "scopes": ["read:jira-user"], "autoConsent": True}]
    path = Path(directory) / "many-sites-apps.json"
    path.write_text(json.dumps(document))
    return path


def user_access_token(port):
    """An OAuth 2.0 access token acting for `bench-list-10` (a user of the default site only) for
    the seeded app `bench-app`, through `/authorize` with
    `login_hint` (the app consents automatically) and the authorization-code grant."""
    callback = "http://127.0.0.1:9/callback"
    query = urllib.parse.urlencode({"audience": "api.atlassian.com", "client_id": "bench-app", "scope": "read:jira-user",
                                    "redirect_uri": callback, "response_type": "code", "login_hint": "list10@example.com"})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", f"/authorize?{query}")
    response = connection.getresponse()
    response.read()
    location = urllib.parse.urlparse(response.getheader("Location"))
    code = urllib.parse.parse_qs(location.query)["code"][0]
    body = urllib.parse.urlencode({"grant_type": "authorization_code", "client_id": "bench-app",
                                   "client_secret": "bench-secret", "code": code, "redirect_uri": callback})
    connection.request("POST", "/oauth/token", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    token = json.loads(connection.getresponse().read())["access_token"]
    connection.close()
    return token


def cpu_seconds(pid):
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def overhead_figures(directory, connections, seconds, rounds):
    """What finding a site and an OAuth 2.0 token cost, measured in one session: a GET in a store of
    one site (the main table's), then in a store of 1,000 sites of 10 users each by the default
    host, the host form and the gateway form, and the default site's GET through the gateway with
    Basic credentials and with an OAuth 2.0 access token, both for one user and one property. The
    scenarios take turns, round after round, each run paired with a ceiling run on the same server
    just before it; the figures are the medians over the rounds, with the server's CPU time per
    request beside them."""
    one = Server(f"sqlite:{directory}/one-site.db", seed=seed_file(directory))
    many = Server(f"sqlite:{directory}/many-sites.db", seed=many_sites_with_app(directory))
    gateway = "/ex/jira/" + json.loads(urllib.request.urlopen(
        f"http://127.0.0.1:{many.port}/_edge/tenant_info", timeout=30).read())["cloudId"]
    oauth = Path(directory) / "get-oauth.lua"
    path = f"{gateway}/rest/api/3/user/properties/key.00000?accountId=bench-list-10"
    oauth.write_text(f'wrk.headers["Authorization"] = "Bearer {user_access_token(many.port)}"\n'
                     f'wrk.path = "{path}"\n')
    basic = Path(directory) / "get-basic-gateway.lua"
    list10 = base64.b64encode(b"list10@example.com:list10-token").decode()
    basic.write_text(f'wrk.headers["Authorization"] = "Basic {list10}"\nwrk.path = "{path}"\n')
    scenarios = [("one-site", one, "get"), ("get", many, "get"), ("get-host", many, "get-host"),
                 ("get-gateway", many, "get-gateway"), ("oauth-basic", many, str(basic)),
                 ("oauth-oauth", many, str(oauth))]
    runs = {name: [] for name, _, _ in scenarios}
    for _ in range(rounds):
        for name, server, script in scenarios:
            ceiling = wrk(server.port, "ceiling", connections, seconds)
            before = cpu_seconds(server.process.pid)
            run = wrk(server.port, script, connections, seconds)
            cpu = cpu_seconds(server.process.pid) - before
            run["ratio"] = run["rps"] / ceiling["rps"]
            run["cpu_us"] = cpu / max(run["rps"] * seconds, 1) * 1e6
            runs[name].append(run)
    one.stop()
    many.stop()
    cells = {}
    for name, measured in runs.items():
        cells[name] = {key: statistics.median(r[key] for r in measured) for key in ("rps", "p50", "p99", "ratio", "cpu_us")}
        cells[name]["failures"] = sum(r["failures"] for r in measured)
        # Each round's difference from the one-site GET of the same round, in points.
        cells[name]["points"] = statistics.median(
            (r["ratio"] - base["ratio"]) * 100 for r, base in zip(measured, runs["one-site"]))
    # OAuth 2.0 against Basic, paired the same way: each round's difference, then the median.
    pairs = list(zip(runs["oauth-oauth"], runs["oauth-basic"]))
    cells["oauth-oauth"]["vs_basic"] = statistics.median((o["ratio"] - b["ratio"]) * 100 for o, b in pairs)
    cells["oauth-oauth"]["cpu_vs_basic"] = statistics.median(o["cpu_us"] - b["cpu_us"] for o, b in pairs)
    return cells


def instruction_counts(directory, requests=2000):
    """User-space instructions the server runs per request, under callgrind: deterministic where
    wrk's figures drift, so a few percent of cost shows. Each scenario gets its own server over a
    database the seed made natively; 300 requests warm it up, then `requests` are counted, one at a
    time on one connection. `None` without valgrind."""
    if not shutil.which("valgrind"):
        return None
    one = Server(f"sqlite:{directory}/count-one.db", seed=seed_file(directory))
    one.stop()
    many = Server(f"sqlite:{directory}/count-many.db", seed=many_sites_with_app(directory))
    cloud_id = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{many.port}/_edge/tenant_info", timeout=30).read())["cloudId"]
    bearer = f"Bearer {user_access_token(many.port)}"
    many.stop()
    bob = "Basic " + base64.b64encode(b"bob@example.com:bob-token").decode()
    list10 = "Basic " + base64.b64encode(b"list10@example.com:list10-token").decode()
    get = f"/rest/api/3/user/properties/bench.get?accountId={BOB}"
    own = "/rest/api/3/user/properties/key.00000?accountId=bench-list-10"
    scenarios = [
        ("one-site", "count-one", get, bob, None),
        ("get", "count-many", get, bob, None),
        ("get-host", "count-many", get, bob, "s0500.localhost"),
        ("get-gateway", "count-many", "/ex/jira/00000000-0000-4000-8000-000000000500" + get, bob, None),
        ("oauth-basic", "count-many", f"/ex/jira/{cloud_id}{own}", list10, None),
        ("oauth-oauth", "count-many", f"/ex/jira/{cloud_id}{own}", bearer, None),
        ("ceiling", "count-many", "/healthz", None, None),
    ]
    counts = {}
    for name, database, target, authorization, host in scenarios:
        port = free_port()
        out = Path(directory) / f"callgrind.{name}"
        process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", str(BINARY),
             "--listen", f"127.0.0.1:{port}", "--database-url", f"sqlite:{directory}/{database}.db", "--log-level", "warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.perf_counter() + 120
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                break
            except OSError:
                if time.perf_counter() > deadline:
                    raise
                time.sleep(0.2)
        headers = {"Host": host or f"127.0.0.1:{port}", **({"Authorization": authorization} if authorization else {})}

        def send(count):
            for _ in range(count):
                connection.request("GET", target, headers=headers)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"{name}: {response.status}")

        send(300)
        subprocess.run(["callgrind_control", "-i", "on", str(process.pid)], capture_output=True, check=True)
        send(requests)
        subprocess.run(["callgrind_control", "-i", "off", str(process.pid)], capture_output=True, check=True)
        process.terminate()
        process.wait(timeout=60)
        totals = [int(line.split()[1]) for line in out.read_text(errors="replace").splitlines()
                  if line.startswith(("totals:", "summary:"))]
        counts[name] = max(totals) / requests
    return counts


def report_overhead(cells, connections):
    for name, cell in cells.items():
        print(f"{name:<12} c={connections} {cell['rps']:>9.0f} req/s ({cell['ratio']:.0%} of the ceiling,"
              f" {cell['points']:+.1f} points)  {cell['cpu_us']:.1f} us CPU/request", flush=True)
    return cells


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """The binary on a free port, logging warnings only (a log line per request is not free)."""

    def __init__(self, database_url, seed=None, port=None, extra=()):
        self.port = port or free_port()
        args = [str(BINARY), "--listen", f"127.0.0.1:{self.port}", "--database-url", database_url, "--log-level", "warn", *extra]
        if seed:
            args += ["--seed", str(seed)]
        self.started = time.perf_counter()
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.first_200 = self.wait_ready()

    def wait_ready(self):
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.001)
        raise RuntimeError("the server did not start")

    def rss_kib(self, field="VmRSS"):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(port, script, connections, seconds):
    threads = min(connections, 2)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
         script if script.endswith(".lua") else f"bench/{script}.lua",
         f"http://127.0.0.1:{port}"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {}
    for percentile in ("50", "99"):
        value, unit = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        latency[percentile] = float(value) * UNITS[unit]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failures = (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p50": latency["50"], "p99": latency["99"], "failures": failures, "requests": requests}


def measure(port, script, connections, seconds, repeats, server=None, peak=None, ceilings=None):
    """The median of `repeats` runs. With `ceilings` (a list), each run is paired with a run of the
    ceiling just before it, which is added to the list, and the ratios are the medians of the
    pairs' ratios: the machine's speed drifts over minutes, so only neighbouring runs compare."""
    runs, pairs = [], []
    for _ in range(repeats):
        ceiling = wrk(port, "ceiling", connections, seconds) if ceilings is not None else None
        run = wrk(port, script, connections, seconds)
        runs.append(run)
        if ceiling:
            ceilings.append(ceiling)
            pairs.append((run["rps"] / ceiling["rps"], run["p99"] / ceiling["p99"]))
        if server and peak is not None:
            peak.append(server.rss_kib("VmHWM"))
    cell = {
        "rps": statistics.median(r["rps"] for r in runs),
        "p50": statistics.median(r["p50"] for r in runs),
        "p99": statistics.median(r["p99"] for r in runs),
        "failures": sum(r["failures"] for r in runs),
    }
    if pairs:
        cell["ratio"] = statistics.median(rps for rps, _ in pairs)
        cell["p99_ratio"] = statistics.median(p99 for _, p99 in pairs)
    return cell


def startup_times(directory, count):
    times = []
    for i in range(count):
        server = Server(f"sqlite:{directory}/startup-{i}.db")
        times.append(server.first_200)
        server.stop()
    return statistics.median(times)


def large_store_latency(directory, seconds):
    """GET p50 with 1,000 stored properties, then with 1,000,000."""
    results = {}
    for total in (1_000, 1_000_000):
        db = f"sqlite:{directory}/large-{total}.db"
        snapshot = Path(directory) / f"large-{total}.json"
        with snapshot.open("w") as out:
            out.write('{"users": [{"accountId": "%s", "email": "bob@example.com", "apiTokenHashes": ["%s"]}], "properties": [' % (
                BOB, __import__("hashlib").sha256(b"bob-token").hexdigest()))
            for i in range(total):
                key = "bench.get" if i == total // 2 else f"filler.{i:07}"
                out.write(("," if i else "") + '{"accountId": "%s", "key": "%s", "value": {"i": %d}}' % (BOB, key, i))
            out.write("]}")
        subprocess.run([str(BINARY), "--database-url", db, "--log-level", "warn", "import", str(snapshot)], check=True)
        # Without memory: the figure is the database's index lookup, not a hit in memory.
        server = Server(db, extra=("--cache-size", "0"))
        results[total] = wrk(server.port, "get", 16, seconds)
        server.stop()
    return results


def cpu_times():
    """Idle and total jiffies of all cores, from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)


# The statements our GET and PUT end with, as store/sql.rs and store/postgres.rs write them, on
# the bench's seeded rows: what "one statement per request" would cost the database, and no more.
POOL_SIZE = 10  # the server's default --db-pool-size; pgbench gets as many connections
# Our statements, as the server sends them in steady state: each reads the credentials version
# beside its value, or guards its write with it ({version} is the database's, read before a run).
DATABASE_OWN = {
    "get": (
        "SELECT v.version, p.value FROM credentials_version v"
        f" LEFT JOIN properties p ON p.site = 0 AND p.account_id = '{BOB}' AND p.key = 'bench.get';"
    ),
    "list-10": (
        "SELECT v.version, ARRAY (SELECT key FROM properties"
        " WHERE site = 0 AND account_id = 'bench-list-10' ORDER BY key) FROM credentials_version v;"
    ),
    "put-update": (
        "WITH v AS (SELECT version FROM credentials_version),"
        " written AS (INSERT INTO properties (site, account_id, key, value)"
        f" SELECT 0, '{BOB}', 'bench.update', '{{\"theme\": \"dark\", \"sizes\": [1, 2.50, null]}}'"
        " FROM v WHERE v.version = {version}"
        " ON CONFLICT (site, account_id, key)"
        " DO UPDATE SET value = EXCLUDED.value, revision = properties.revision + 1 RETURNING revision)"
        " SELECT v.version, written.revision FROM v LEFT JOIN written ON TRUE;"
    ),
}


def credentials_version(url):
    """The database's credentials version, which our writes are guarded with."""
    out = subprocess.run(["psql", url, "-qAtc", "SELECT version FROM credentials_version"],
                         capture_output=True, text=True, check=True).stdout
    return int(out.strip())


def pgbench(url, statement, clients, seconds):
    """The database's own rate for one statement: pgbench -M prepared, on the same cores as we run."""
    with tempfile.TemporaryDirectory(prefix="jira-userprops-pgbench-") as logs:
        script = Path(logs) / "statement.sql"
        script.write_text(statement + "\n")
        out = subprocess.run(
            ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", str(script),
             "-l", "--log-prefix", str(Path(logs) / "tx"), url],
            capture_output=True, text=True, check=True,
        ).stdout
        # Each log line: client, transaction, latency in µs, ...
        latencies = sorted(int(line.split()[2]) for log in Path(logs).glob("tx*") for line in log.read_text().splitlines())
    return {
        "rps": float(re.search(r"tps = ([\d.]+)", out).group(1)),
        "p50": latencies[len(latencies) // 2] / 1000,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1000,
    }


def commits(url):
    """Transactions committed in the database so far; each statement outside a transaction is one."""
    out = subprocess.run(["psql", url, "-qAtc", "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


# A PostgreSQL backend that flushed its statistics less than a second ago keeps the rest for up to
# 10 s (PGSTAT_IDLE_INTERVAL): wait that out before each reading.
STATISTICS_SETTLE = 11


def statements_per_request(url, port, script, seconds):
    """Committed transactions per request answered, over one wrk run."""
    time.sleep(STATISTICS_SETTLE)
    before = commits(url)
    run = wrk(port, script, 64, seconds)
    time.sleep(STATISTICS_SETTLE)
    # Less the reading's own transaction.
    return (commits(url) - before - 1) / max(run["requests"], 1)


def postgres_figures(url, seconds, repeats, seed):
    """Our rates beside the database's own for the same statement. Each of our runs follows a
    pgbench run of its statement, and shares and latency ratios are medians over those pairs:
    the machine's speed, and pgbench's p99 with it, drift over minutes (as the ceiling does)."""
    one = Server(url, seed=seed)
    wrk(one.port, "get", 64, 1)  # connections made and statements prepared before anything counts
    single = {}
    for scenario in ("get", "put-update", "list-10", "mix"):
        if scenario not in DATABASE_OWN:
            single[scenario] = measure(one.port, scenario, 64, seconds, repeats)
            continue
        statement = DATABASE_OWN[scenario].replace("{version}", str(credentials_version(url)))
        own, busy, at_pool = [], [], []
        for _ in range(repeats):
            own.append(pgbench(url, statement, POOL_SIZE, seconds))
            busy.append(wrk(one.port, scenario, 64, seconds))
            # Latency like for like: as many clients as pgbench had, none queued for the pool.
            at_pool.append(wrk(one.port, scenario, POOL_SIZE, seconds))
        median = lambda runs, k: statistics.median(r[k] for r in runs)
        cell = {k: median(busy, k) for k in ("rps", "p50", "p99")}
        cell["own"] = {k: median(own, k) for k in ("rps", "p50", "p99")}
        cell["share"] = statistics.median(b["rps"] / o["rps"] for b, o in zip(busy, own))
        cell["at_pool"] = {k: median(at_pool, k) for k in ("rps", "p50", "p99")}
        cell["at_pool"]["share"] = statistics.median(a["rps"] / o["rps"] for a, o in zip(at_pool, own))
        cell["at_pool"]["p99_ratio"] = statistics.median(a["p99"] / o["p99"] for a, o in zip(at_pool, own))
        single[scenario] = cell
    for scenario, cell in single.items():
        cell["statements"] = statements_per_request(url, one.port, scenario, seconds)
    two = Server(url, seed=seed)
    both = []
    for _ in range(repeats):
        runs = [subprocess.Popen(["wrk", "-t1", "-c32", f"-d{seconds}s", "-s", "bench/get.lua", f"http://127.0.0.1:{s.port}"],
                                 cwd=ROOT, stdout=subprocess.PIPE, text=True) for s in (one, two)]
        total = 0.0
        for run in runs:
            out, _ = run.communicate()
            total += float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        both.append(total)
    # Idle CPU while one instance is loaded: what a second instance could use at most.
    idle_before, total_before = cpu_times()
    one_only = statistics.median(wrk(one.port, "get", 64, seconds)["rps"] for _ in range(repeats))
    idle_after, total_after = cpu_times()
    one.stop()
    two.stop()
    idle = (idle_after - idle_before) / max(total_after - total_before, 1)
    return single, {"one": one_only, "two": statistics.median(both), "idle": idle}


def render_postgres(pg):
    """The PostgreSQL section of the report."""
    single, scale = pg
    lines = ["", "## PostgreSQL", "",
              f"Beside our GET and PUT, the database's own rate for the one statement each ends with (`pgbench -M prepared`,"
              f" {POOL_SIZE} connections, the server's pool size, on the same cores): the ceiling for one statement per request."
              " *Statements per request* is the growth of `pg_stat_database.xact_commit` over a run, divided by the requests"
              " answered (every statement outside a transaction commits one). Each of our runs follows a pgbench run of its"
              " statement; *share* and *p99 / its p99* are medians over those pairs, since the machine's speed drifts.", "",
              "| scenario (64 connections) | requests/s | p50 ms | p99 ms | statements per request |"
              " the statement alone: requests/s | share of it | its p99 ms |",
              "|---|---|---|---|---|---|---|---|"]
    for scenario, cell in single.items():
        own = cell.get("own")
        alone = (f" {own['rps']:.0f} | {cell['share']:.0%} | {own['p99']:.3f} |" if own else " | | |")
        lines.append(f"| {scenario} | {cell['rps']:.0f} | {cell['p50']:.3f} | {cell['p99']:.3f} | {cell['statements']:.2f} |{alone}")
    lines += ["", f"The same at {POOL_SIZE} connections, as many as pgbench's clients, so that no request waits for the"
              " pool: latency like for like.", "",
              f"| scenario ({POOL_SIZE} connections) | requests/s | p50 ms | p99 ms | share of the statement's rate |"
              " its p99 ms | p99 / its p99 |", "|---|---|---|---|---|---|---|"]
    for scenario, cell in single.items():
        if "at_pool" in cell:
            at, own = cell["at_pool"], cell["own"]
            lines.append(f"| {scenario} | {at['rps']:.0f} | {at['p50']:.3f} | {at['p99']:.3f} | {at['share']:.0%} |"
                         f" {own['p99']:.3f} | {at['p99_ratio']:.1f}x |")
    lines.append("")
    lines.append(f"- GET, one instance: {scale['one']:.0f} req/s; two instances over one database: {scale['two']:.0f} req/s"
                 f" ({scale['two'] / scale['one']:.2f}x), on the same 2 cores as the database and the load generator."
                 f" While one instance was loaded the cores were {scale['idle']:.0%} idle: that is all a second instance could add.")
    return "\n".join(lines)


def svg_plot(results, connections):
    """Throughput and p99 against connections, one line per scenario."""
    width, height, pad = 760, 300, 50
    colours = ["#444", "#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{2 * height + 40}" font-family="sans-serif" font-size="11">']
    for panel, (metric, label) in enumerate([("rps", "requests/s"), ("p99", "p99 latency (ms)")]):
        top = panel * (height + 20) + 10
        peak = max(results[s][c][metric] for s, _ in SCENARIOS for c in connections) or 1
        x = lambda i: pad + i * (width - 2 * pad - 160) / max(len(connections) - 1, 1)
        y = lambda v: top + height - pad - v / peak * (height - 2 * pad)
        parts.append(f'<text x="{pad}" y="{top + 14}" font-size="13">{label} against connections</text>')
        parts.append(f'<line x1="{pad}" y1="{top + height - pad}" x2="{width - pad - 160}" y2="{top + height - pad}" stroke="#999"/>')
        parts.append(f'<line x1="{pad}" y1="{top + pad}" x2="{pad}" y2="{top + height - pad}" stroke="#999"/>')
        parts.append(f'<text x="{pad - 4}" y="{top + pad}" text-anchor="end">{peak:.0f}</text>')
        for i, c in enumerate(connections):
            parts.append(f'<text x="{x(i)}" y="{top + height - pad + 14}" text-anchor="middle">{c}</text>')
        for n, (scenario, _) in enumerate(SCENARIOS):
            points = " ".join(f"{x(i):.1f},{y(results[scenario][c][metric]):.1f}" for i, c in enumerate(connections))
            colour = colours[n % len(colours)]
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
            parts.append(f'<text x="{width - pad - 150}" y="{top + pad + 14 * n}" fill="{colour}">{scenario}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5, help="length of one wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell; the median is quoted")
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--postgres", help="also measure on this PostgreSQL URL (its public schema is used)")
    parser.add_argument("--smoke", action="store_true", help="a few seconds, to show the harness works")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where benchmarks.md and the plot go")
    parser.add_argument("--overhead-only", action="store_true",
                        help="only the many-sites and OAuth 2.0 rounds, printed, nothing written")
    parser.add_argument("--postgres-only", action="store_true",
                        help="only the PostgreSQL figures (needs --postgres), printed, nothing written")
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",")]
    if args.smoke:
        args.seconds, args.repeats, connections = 0.5, 1, [4]
    seconds = max(1, round(args.seconds))
    directory = tempfile.mkdtemp(prefix="jira-userprops-bench-")
    if args.postgres_only:
        if not args.postgres:
            sys.exit("bench: --postgres-only needs --postgres URL")
        try:
            pg = postgres_figures(args.postgres, seconds, args.repeats, seed_file(directory))
            print(render_postgres(pg))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    if args.overhead_only:
        try:
            busiest = max(connections)
            cells = report_overhead(overhead_figures(directory, busiest, seconds, args.repeats), busiest)
            print(render_sites({}, cells, busiest, instruction_counts(directory)))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        return
    try:
        seed = seed_file(directory)
        server = Server(f"sqlite:{directory}/bench.db", seed=seed)
        idle_rss = server.rss_kib()
        peak = []
        results = {}
        ceilings = {c: [] for c in connections}
        for scenario, _ in SCENARIOS[1:]:
            results[scenario] = {}
            for c in connections:
                cell = measure(server.port, scenario, c, seconds, args.repeats, server, peak, ceilings[c])
                results[scenario][c] = cell
                print(f"{scenario:<11} c={c:<3} {cell['rps']:>9.0f} req/s ({cell['ratio']:.0%} of the ceiling)"
                      f"  p50 {cell['p50']:.3f} ms  p99 {cell['p99']:.3f} ms ({cell['p99_ratio']:.1f}x)"
                      f"  failures {cell['failures']}", flush=True)
        # The ceiling's own row: every ceiling run at that connection count.
        results["ceiling"] = {
            c: {
                "rps": statistics.median(r["rps"] for r in runs),
                "p50": statistics.median(r["p50"] for r in runs),
                "p99": statistics.median(r["p99"] for r in runs),
                "failures": sum(r["failures"] for r in runs),
                "ratio": 1.0,
                "p99_ratio": 1.0,
            }
            for c, runs in ceilings.items()
        }
        server.stop()
        starts = 1 if args.smoke else 5
        startup = startup_times(directory, starts)
        large = None if args.smoke else large_store_latency(directory, seconds)
        pg = postgres_figures(args.postgres, seconds, args.repeats, seed) if args.postgres and not args.smoke else None
        lifecycle = {"SQLite": site_lifecycle(f"sqlite:{directory}/sites.db", 5 if args.smoke else 200)}
        if args.postgres:
            lifecycle["PostgreSQL"] = site_lifecycle(args.postgres, 5 if args.smoke else 200)
        busiest = max(connections)
        many = report_overhead(overhead_figures(directory, busiest, seconds, 1 if args.smoke else 5), busiest)
        counts = instruction_counts(directory, 100 if args.smoke else 2000)
        report = render(args, connections, results, idle_rss, max(peak or [0]), (startup, starts), large, pg)
        report += render_sites(lifecycle, many, busiest, counts)
        if args.smoke:
            print(report)
            return
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "benchmarks.md").write_text(report)
        (out / "benchmarks.svg").write_text(svg_plot(results, connections))
        print(f"wrote {out / 'benchmarks.md'} and {out / 'benchmarks.svg'}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def render(args, connections, results, idle_rss, peak_rss, startup, large, pg):
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":")[1].strip()
    version = lambda cmd: subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    commit = version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    lines = [
        "# Benchmarks",
        "",
        f"Measured with `{' '.join(['bench/run.sh'] + sys.argv[1:])}` at commit `{commit}`.",
        "",
        f"- Machine: {os.cpu_count()} cores ({cpu}), {memory} memory, {platform.platform()}; the load generator runs on the same cores.",
        f"- Versions: {version(['rustc', '--version'])}; {version(['wrk', '--version'])}.",
        f"- Server: release build, SQLite in WAL mode with `synchronous=FULL`: writes are committed in groups by one writer and each is answered 2xx only after its group's commit is fsynced; reads come from the store's memory (`--cache-size 4`, the default). `--log-level warn`, defaults otherwise.",
        f"- Each cell: {args.repeats} runs of {max(1, round(args.seconds))} s with wrk; the median is quoted. Each run follows a run of the ceiling (`/healthz` of the same binary) at the same connection count, and a ratio is the median of the ratios of those pairs: the benchmark machine's speed drifts by a third over minutes, so only neighbouring runs compare. The ceiling's row is the median of all its runs.",
        "",
        "| scenario | connections | requests/s | ratio to ceiling | p50 ms | p99 ms | p99 / ceiling p99 | failures |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scenario, label in SCENARIOS:
        for c in connections:
            cell = results[scenario][c]
            lines.append(
                f"| {label} | {c} | {cell['rps']:.0f} | {cell['ratio']:.0%} | {cell['p50']:.3f} | {cell['p99']:.3f} |"
                f" {cell['p99_ratio']:.1f}x | {cell['failures']} |"
            )
    lines += [
        "",
        "![throughput and p99 against connections](benchmarks.svg)",
        "",
        f"- Start to first 200 on an empty database (median of {startup[1]}): {startup[0] * 1000:.1f} ms.",
        f"- RSS: {idle_rss / 1024:.1f} MiB idle after start; {peak_rss / 1024:.1f} MiB at the peak under load.",
    ]
    if large:
        small, big = large[1_000], large[1_000_000]
        lines.append(
            f"- GET p50 at 16 connections, with the memory off (`--cache-size 0`) so that the database answers: {small['p50']:.3f} ms"
            f" with 1,000 stored properties, {big['p50']:.3f} ms with 1,000,000 ({big['p50'] / small['p50']:.2f}x)."
        )
    if pg:
        lines += render_postgres(pg).splitlines()
    return "\n".join(lines) + "\n"


def render_sites(lifecycle, many, connections, counts=None):
    lines = [
        "",
        "## Sites",
        "",
        "A site made with 5 users and 20 properties through `POST /_admin/sites`, then deleted, one request at a time"
        " (the client's own time included):",
        "",
        "| store | create p50 ms | create p99 ms | delete p50 ms | delete p99 ms |",
        "|---|---|---|---|---|",
    ]
    for store, figures in lifecycle.items():
        (create50, create99), (delete50, delete99) = figures["create"], figures["delete"]
        lines.append(f"| {store} | {create50:.2f} | {create99:.2f} | {delete50:.2f} | {delete99:.2f} |")
    lines += [
        "",
        "## Many sites and OAuth 2.0, against one site's GET",
        "",
        f"SQLite, {connections} connections. A GET in a store of one site (the main table's store), then the same GET in a"
        " store of 1,000 sites of 10 users each, by the default host, the host form (`s0500.localhost`) and the gateway"
        " form (`/ex/jira/{cloudId}`); then the default site's GET through the gateway form with Basic credentials and"
        " with an OAuth 2.0 access token acting for the same user (3LO; SQLite keeps known access tokens in its cache,"
        " dropped at any revocation). The scenarios take turns for 5 rounds, each run paired with a ceiling run on the same server"
        " just before it. *Points* is the median over the rounds of the run's ratio minus the one-site GET's ratio"
        " in the same round; *CPU* is the server's user and system time per request answered.",
        "",
        "| scenario | requests/s | ratio to ceiling | points vs one site | CPU µs/request | instructions/request | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    counted = lambda name: f"{counts[name]:,.0f} ({counts[name] / counts['one-site'] - 1:+.1%})" if counts else "–"
    labels = {"one-site": "GET, a store of one site", "get": "GET, 1,000 sites, default site",
              "get-host": "GET, 1,000 sites, host form", "get-gateway": "GET, 1,000 sites, gateway form",
              "oauth-basic": "GET, 1,000 sites, default site through the gateway, Basic",
              "oauth-oauth": "GET, 1,000 sites, default site through the gateway, OAuth 2.0 access token"}
    for name, cell in many.items():
        lines.append(f"| {labels[name]} | {cell['rps']:.0f} | {cell['ratio']:.0%} | {cell['points']:+.1f} |"
                     f" {cell['cpu_us']:.1f} | {counted(name)} | {cell['p50']:.3f} | {cell['p99']:.3f} |")
    oauth, basic = many["oauth-oauth"], many["oauth-basic"]
    lines += [
        "",
        f"OAuth 2.0 against Basic, through the gateway, paired round by round as *points* are:"
        f" {oauth['vs_basic']:+.1f} points of the ceiling, {oauth['cpu_vs_basic']:+.1f} µs of CPU per request"
        + (f", {counts['oauth-oauth'] / counts['oauth-basic'] - 1:+.1%} instructions." if counts else "."),
    ]
    if counts:
        lines += [
            "",
            "*Instructions/request* are the server's own (user space, kernel excluded), counted by valgrind's callgrind"
            " over 2,000 requests sent one at a time after 300 to warm up, each scenario on a fresh server over the same"
            f" databases: the same count on every run, where the columns before it drift by several points. The ceiling"
            f" (`/healthz`) runs {counts['ceiling']:,.0f}; the rest of what a request costs is the kernel's and wrk's.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
