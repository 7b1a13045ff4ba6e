"""The benchmark harness: starts the release binary, loads it with wrk, and reports.

Run through bench/run.sh, which installs wrk and builds the binary. Standard library only.
"""

import argparse
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


def many_sites_figures(directory, connections, seconds, repeats):
    """GET by host form and by gateway form with 1,000 sites of 10 users in the store, each paired
    with the ceiling as the main table is; and the default site's GET in the same store."""
    seed = many_sites_file(directory, 1000, 10)
    server = Server(f"sqlite:{directory}/many-sites.db", seed=seed)
    cells = {}
    for script in ("get", "get-host", "get-gateway"):
        cells[script] = measure(server.port, script, connections, seconds, repeats, ceilings=[])
    server.stop()
    return cells


def oauth_figures(directory, connections, seconds, repeats):
    """GET through the gateway form with an OAuth 2.0 access token (a service account's), and
    with Basic credentials, each run paired with the ceiling as the main table is."""
    seed = json.loads(seed_file(directory).read_text())
    seed["apps"] = [{"name": "Bench bot", "kind": "serviceAccount", "clientId": "bench-bot",
                     "clientSecret": "bench-secret", "sites": ["default"], "scopes": ["read:jira-user"]}]
    path = Path(directory) / "oauth-seed.json"
    path.write_text(json.dumps(seed))
    server = Server(f"sqlite:{directory}/oauth.db", seed=path)
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/oauth/token", method="POST",
        data=b"grant_type=client_credentials&client_id=bench-bot&client_secret=bench-secret",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=30) as response:
        token = json.loads(response.read())["access_token"]
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/_edge/tenant_info", timeout=30) as response:
        cloud_id = json.loads(response.read())["cloudId"]
    script = Path(directory) / "get-oauth.lua"
    script.write_text(
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        f'wrk.path = "/ex/jira/{cloud_id}/rest/api/3/myself"\n')
    basic = Path(directory) / "get-basic-gateway.lua"
    basic.write_text(
        'dofile("bench/auth.lua")\n'
        f'wrk.path = "/ex/jira/{cloud_id}/rest/api/3/myself"\n')
    cells = {
        "basic": measure(server.port, str(basic), connections, seconds, repeats, ceilings=[]),
        "oauth": measure(server.port, str(script), connections, seconds, repeats, ceilings=[]),
    }
    server.stop()
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
    return {"rps": rps, "p50": latency["50"], "p99": latency["99"], "failures": failures}


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


def postgres_figures(url, seconds, repeats, seed):
    one = Server(url, seed=seed)
    single = {s: measure(one.port, s, 64, seconds, repeats) for s in ("get", "put-update", "mix")}
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
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",")]
    if args.smoke:
        args.seconds, args.repeats, connections = 0.5, 1, [4]
    seconds = max(1, round(args.seconds))
    directory = tempfile.mkdtemp(prefix="jira-userprops-bench-")
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
        many = many_sites_figures(directory, busiest, seconds, args.repeats)
        many.update({f"oauth-{k}": v for k, v in oauth_figures(directory, busiest, seconds, args.repeats).items()})
        report = render(args, connections, results, idle_rss, max(peak or [0]), (startup, starts), large, pg)
        report += render_sites(lifecycle, many, busiest, results["get"][busiest])
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
        f"- Server: release build, SQLite in WAL mode with `synchronous=FULL`: writes are committed in groups by one writer and each is answered 2xx only after its group's commit is fsynced; reads come from the store's memory (`--cache-size 8`, the default). `--log-level warn`, defaults otherwise.",
        f"- Each cell: {args.repeats} runs of {max(1, round(args.seconds))} s with wrk; the median is quoted. Each run follows a run of the ceiling (`/healthz` of the same binary) at the same connection count, and a ratio is the median of the ratios of those pairs: this machine's speed drifts by a third over minutes, so only neighbouring runs compare. The ceiling's row is the median of all its runs.",
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
        single, scale = pg
        lines += ["", "## PostgreSQL", "", "| scenario (64 connections) | requests/s | p50 ms | p99 ms |", "|---|---|---|---|"]
        for scenario, cell in single.items():
            lines.append(f"| {scenario} | {cell['rps']:.0f} | {cell['p50']:.3f} | {cell['p99']:.3f} |")
        lines.append("")
        lines.append(f"- GET, one instance: {scale['one']:.0f} req/s; two instances over one database: {scale['two']:.0f} req/s"
                     f" ({scale['two'] / scale['one']:.2f}x), on the same 2 cores as the database and the load generator."
                     f" While one instance was loaded the cores were {scale['idle']:.0%} idle: that is all a second instance could add.")
    return "\n".join(lines) + "\n"


def render_sites(lifecycle, many, connections, main_get):
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
        f"GET with 1,000 sites of 10 users each in one SQLite store, {connections} connections, each run paired with"
        f" the ceiling as above. The main table's GET (one site) was {main_get['ratio']:.0%} of the ceiling.",
        "",
        "| scenario | requests/s | ratio to ceiling | p50 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    labels = {"get": "GET, default site", "get-host": "GET, host form (`s0500.localhost`)",
              "get-gateway": "GET, gateway form (`/ex/jira/{cloudId}`)",
              "oauth-basic": "GET `myself` through the gateway, Basic",
              "oauth-oauth": "GET `myself` through the gateway, OAuth 2.0 access token"}
    for script, cell in many.items():
        if script.startswith("oauth-"):
            continue
        lines.append(f"| {labels[script]} | {cell['rps']:.0f} | {cell['ratio']:.0%} | {cell['p50']:.3f} | {cell['p99']:.3f} |")
    lines += [
        "",
        "## Apps",
        "",
        f"`GET /ex/jira/{{cloudId}}/rest/api/3/myself` in a store of one site, {connections} connections, each run paired"
        " with the ceiling: Basic credentials, then a service account's OAuth 2.0 access token (SQLite keeps known"
        " access tokens in its cache, dropped at any revocation; PostgreSQL asks every time).",
        "",
        "| scenario | requests/s | ratio to ceiling | p50 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for script in ("oauth-basic", "oauth-oauth"):
        cell = many[script]
        lines.append(f"| {labels[script]} | {cell['rps']:.0f} | {cell['ratio']:.0%} | {cell['p50']:.3f} | {cell['p99']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
