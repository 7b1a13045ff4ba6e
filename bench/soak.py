"""The soak test: holds a moderate mixed load on the release binary for a long time and reports.

It owns the soak run and its report, docs/soak.md: it starts the binary (JIRA_USERPROPS_BIN, else
target/release/jira-userprops) with a seed, runs wrk with bench/soak.lua in consecutive slices,
and after each slice records throughput, p99 latency, errors, RSS and open file descriptors; a
thread samples the size of the database's write-ahead log every half second, for its peak.
It exits non-zero if any request failed or memory was not flat. --smoke runs about 6 s, prints
the report and writes nothing. Standard library only; wrk must be on the PATH.
"""

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

# The benchmark harness beside this file knows the binary, Bob and how to find a free port.
from bench import BINARY, BOB, ROOT, free_port
AUTH = "Basic Ym9iQGV4YW1wbGUuY29tOmJvYi10b2tlbg=="  # bob@example.com:bob-token, as bench/auth.lua
SEEDED_KEYS = 10
EXPECTED = {"200", "201", "204", "404-absent"}
WRK_TIMEOUT = 2  # wrk's default, said explicitly: a slower answer is a timeout and so an error
MIB = 1024


def seed_file(directory):
    """Bob and a few of the keys soak.lua uses; the load itself fills the rest."""
    users = [{"accountId": BOB, "email": "bob@example.com", "displayName": "Bob", "apiTokens": ["bob-token"]}]
    properties = [{"accountId": BOB, "key": f"soak.{i:03}", "value": {"seeded": i}} for i in range(SEEDED_KEYS)]
    path = Path(directory) / "seed.json"
    path.write_text(json.dumps({"users": users, "properties": properties}))
    return path


class Server:
    """The binary on a free port, logging warnings only; its stderr is kept to count them."""

    def __init__(self, database_url, seed, log_path):
        self.port = free_port()
        self.log_path = log_path
        args = [str(BINARY), "--listen", f"127.0.0.1:{self.port}", "--database-url", database_url,
                "--log-level", "warn", "--seed", str(seed)]
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
        try:
            self.wait_ready()
        except BaseException:
            # The caller never gets this object, so it could not stop the process itself.
            self.process.kill()
            self.process.wait()
            raise

    def wait_ready(self):
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("the server did not start")

    def status_kib(self, field):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stored_keys(self):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/rest/api/3/user/properties?accountId={BOB}", headers={"Authorization": AUTH})
        with urllib.request.urlopen(request, timeout=10) as response:
            return len(json.load(response)["keys"])

    def log(self):
        return Path(self.log_path).read_text(errors="replace").strip()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


class WalWatch:
    """The size of the database's write-ahead log, sampled every half second in a thread: for
    SQLite the `-wal` file beside the database; for PostgreSQL `pg_ls_waldir()`, which needs a
    superuser (without one the WAL is not measured). `take()` gives the peak since the last take."""

    def __init__(self, database_url):
        self.database_url = database_url
        self.peak = self.overall = None
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def size(self):
        url = self.database_url
        if url.startswith("sqlite:"):
            path = url.removeprefix("sqlite:").removeprefix("//").split("?")[0]
            wal = Path(path + "-wal")
            return wal.stat().st_size if wal.exists() else 0
        out = subprocess.run(["psql", url, "-qAtc", "SELECT coalesce(sum(size), 0) FROM pg_ls_waldir()"],
                             capture_output=True, text=True)
        return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip().isdigit() else None

    def run(self):
        while not self.done.wait(0.5):
            size = self.size()
            if size is None:
                return
            with self.lock:
                self.peak = max(self.peak or 0, size)
                self.overall = max(self.overall or 0, size)

    def take(self):
        with self.lock:
            peak, self.peak = self.peak, None
        return peak

    def stop(self):
        self.done.set()
        self.thread.join()


def wal_verdict(minutes):
    """Bounded: the last minute's WAL peak within 10% (or 1 MiB) of the second minute's."""
    if len(minutes) < 3 or any(s["wal"] is None for m in minutes for s in m):
        return None
    second = max(s["wal"] for s in minutes[1])
    last = max(s["wal"] for s in minutes[-1])
    return last <= second + max(0.10 * second, MIB * 1024)


SOAK_LINE = re.compile(
    r"^SOAK requests=(\d+) duration_us=(\d+) p99_us=(\d+) connect=(\d+) read=(\d+) write=(\d+) timeout=(\d+) status=(\S*)$",
    re.M)


def wrk_slice(port, connections, seconds):
    out = subprocess.run(
        ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{seconds}s", f"--timeout={WRK_TIMEOUT}s",
         "-s", "bench/soak.lua", f"http://127.0.0.1:{port}"],
        cwd=ROOT, capture_output=True, text=True,
    )
    match = SOAK_LINE.search(out.stdout)
    if out.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    requests, duration, p99, *socket_errors, classes = match.groups()
    status = {}
    for item in filter(None, classes.split(",")):
        name, count = item.rsplit(":", 1)
        status[name] = int(count)
    sockets = sum(map(int, socket_errors))
    return {
        "requests": int(requests),
        "rps": int(requests) / (int(duration) / 1e6),
        "p99": int(p99) / 1000,
        "status": status,
        "socket_errors": sockets,
        "errors": sockets + sum(n for name, n in status.items() if name not in EXPECTED),
    }


def soak(server, wal, slices, slice_seconds, connections):
    samples = []
    started = time.perf_counter()
    for _ in range(slices):
        sample = wrk_slice(server.port, connections, slice_seconds)
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited with {server.process.returncode}: {server.log()}")
        # A moment for the server to close the connections wrk just dropped, so the fd count is
        # the idle one and a leak shows as a trend rather than hiding in that noise.
        time.sleep(0.1)
        sample.update(elapsed=time.perf_counter() - started, rss=server.status_kib("VmRSS"), fds=server.open_fds(),
                      wal=wal.take())
        samples.append(sample)
        print(f"{sample['elapsed']:7.1f} s  {sample['rps']:7.0f} req/s  p99 {sample['p99']:8.2f} ms  errors {sample['errors']}"
              f"  RSS {sample['rss'] / MIB:6.1f} MiB  fds {sample['fds']}  WAL {mib(sample['wal'])}", flush=True)
    return samples


def mib(size_bytes):
    return "?" if size_bytes is None else f"{size_bytes / MIB / 1024:.1f} MiB"


def by_minute(samples, slice_seconds):
    per = max(1, round(60 / slice_seconds))
    return [samples[i:i + per] for i in range(0, len(samples), per)]


def memory_verdict(minutes):
    """Flat: the last minute's median RSS within 10% (or 2 MiB, if larger) of the second minute's.

    The first minute is warm-up (the store fills, caches and pools grow), so it is not the base;
    a run of under 3 minutes has no minute between warm-up and the end, and is not judged.
    """
    if len(minutes) < 3:
        return None, None
    second = statistics.median(s["rss"] for s in minutes[1])
    last = statistics.median(s["rss"] for s in minutes[-1])
    tolerance = max(0.10 * second, 2 * MIB)
    return abs(last - second) <= tolerance, tolerance


def redact(url):
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


def first_line(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()
    return out[0] if out else "?"


def span(values, fmt):
    low, high = min(values), max(values)
    return fmt.format(low) if fmt.format(low) == fmt.format(high) else f"{fmt.format(low)}–{fmt.format(high)}"


def minute_wal(minute):
    sizes = [s["wal"] for s in minute if s["wal"] is not None]
    return mib(max(sizes)) if sizes else "?"


def render(args, settings, samples, minutes, final):
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "?")
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split(":")[1].strip()
    commit = first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    built = datetime.fromtimestamp(BINARY.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    try:
        binary = BINARY.relative_to(ROOT)
    except ValueError:
        binary = BINARY
    command = shlex.join(["python3", "bench/soak.py"] + sys.argv[1:])
    lines = [
        "# Soak",
        "",
        f"Measured on {final['date']} with `{command}` at commit `{commit}`.",
        "",
        f"- Machine: {os.cpu_count()} cores ({cpu}), {memory} memory, {platform.platform()}. wrk runs on the same"
        " cores, and so did unrelated work: throughput is noisy and is not the point here (see"
        " [benchmarks.md](benchmarks.md) for speed); errors and memory over time are.",
        f"- Binary: `{binary}`, {first_line([str(BINARY), '--version'])}, built {built}; `--log-level warn`,"
        " defaults otherwise.",
        f"- Database: {settings['database']}.",
        f"- Load: {first_line(['wrk', '--version']).split(' Copyright')[0]}; {min(args.connections, 2)} threads,"
        f" {args.connections} connections, {WRK_TIMEOUT} s timeout; {len(samples)} consecutive runs of {args.slice} s"
        f" ({settings['duration']}), each a fresh wrk with new connections. After each run the server's RSS (VmRSS) and"
        " open file descriptors are read from /proc.",
        f"- Mix (`bench/soak.lua`), as Bob over 500 keys of his chosen uniformly ({SEEDED_KEYS} seeded): 70% GET"
        " property, 15% PUT (create or update; values of 16 B to 4 KiB), 5% DELETE, 10% list keys. At that"
        " ratio of PUT to DELETE about three keys in four are present once warm.",
        "- Expected answers: 200, 201, 204, and 404 with \"The property K does not exist.\" (a GET or DELETE of an"
        " absent key). Any other status, and every socket error or timeout, is an error.",
        "- Memory is *flat* when the median RSS of the last minute is within 10% (or 2 MiB, whichever is larger)"
        " of the median of the second minute; the first minute is warm-up. The write-ahead log is *bounded* when its"
        " peak in the last minute is within 10% (or 1 MiB) of its peak in the second. Runs under 3 minutes are not"
        " judged.",
        "",
        "## Samples",
        "",
    ]
    if len(samples) <= 20:
        lines += ["| elapsed s | requests/s | p99 ms | errors | RSS MiB | fds | WAL peak |", "|---|---|---|---|---|---|---|"]
        for s in samples:
            lines.append(f"| {s['elapsed']:.1f} | {s['rps']:.0f} | {s['p99']:.2f} | {s['errors']} |"
                         f" {s['rss'] / MIB:.1f} | {s['fds']} | {mib(s['wal'])} |")
    else:
        lines += ["One row per minute; ranges are the min–max of its samples.", "",
                  "| minute | requests | requests/s | p99 ms | errors | RSS MiB | fds | WAL peak |",
                  "|---|---|---|---|---|---|---|---|"]
        for n, minute in enumerate(minutes, 1):
            lines.append(
                f"| {n} | {sum(s['requests'] for s in minute)} | {span([s['rps'] for s in minute], '{:.0f}')} |"
                f" {span([s['p99'] for s in minute], '{:.2f}')} | {sum(s['errors'] for s in minute)} |"
                f" {span([s['rss'] / MIB for s in minute], '{:.1f}')} | {span([s['fds'] for s in minute], '{}')} |"
                f" {minute_wal(minute)} |")
    status = {}
    for s in samples:
        for name, n in s["status"].items():
            status[name] = status.get(name, 0) + n
    total = sum(s["requests"] for s in samples)
    errors = sum(s["errors"] for s in samples)
    sockets = sum(s["socket_errors"] for s in samples)
    answers = ", ".join(f"{n} × {name.replace('-absent', ' (absent key)')}" for name, n in sorted(status.items()))
    rss = lambda minute: statistics.median(s["rss"] for s in minute) / MIB
    memory_line = f"- RSS (median of the minute): first {rss(minutes[0]):.1f} MiB"
    if len(minutes) > 1:
        memory_line += f", second {rss(minutes[1]):.1f} MiB"
    memory_line += (f", last {rss(minutes[-1]):.1f} MiB; highest sample {max(s['rss'] for s in samples) / MIB:.1f} MiB;"
                    f" peak (VmHWM) {final['hwm'] / MIB:.1f} MiB.")
    lines += [
        "",
        "## Summary",
        "",
        f"- Requests: {total} in {samples[-1]['elapsed']:.0f} s ({total / samples[-1]['elapsed']:.0f}/s overall);"
        f" answers: {answers}.",
        f"- Errors: {errors} ({sockets} socket errors or timeouts, {errors - sockets} unexpected statuses).",
        f"- p99 latency per run: {min(s['p99'] for s in samples):.2f} to {max(s['p99'] for s in samples):.2f} ms,"
        f" median {statistics.median(s['p99'] for s in samples):.2f} ms.",
        memory_line,
        f"- Open file descriptors: {samples[0]['fds']} after the first run, {samples[-1]['fds']} after the last"
        f" (highest {max(s['fds'] for s in samples)}).",
        f"- Keys stored at the end: {final['keys']}. Server log lines (warn and above): {final['log_lines']}.",
    ]
    if final["wal"] is not None:
        lines.append(f"- Write-ahead log: peak {mib(final['wal'])} over the whole run (sampled every 0.5 s);"
                     " the table gives each minute's peak.")
    if final["files"]:
        lines.append(f"- SQLite files at the end, before the stop: {final['files']}.")
    lines += ["", final["verdict"]]
    if final["log_lines"]:
        lines += ["", "Server log:", "", "```", *final["log"].splitlines()[:20], "```"]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10, help="how long to hold the load (default 10)")
    parser.add_argument("--slice", type=int, default=10, help="seconds per wrk run, one sample each (default 10)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temporary directory")
    parser.add_argument("--out", default=str(ROOT / "docs" / "soak.md"), help="the report (default docs/soak.md)")
    parser.add_argument("--smoke", action="store_true", help="about 6 s in 2 s slices; prints the report, writes nothing")
    args = parser.parse_args()
    if args.smoke:
        args.minutes, args.slice = 0.1, 2
    if not BINARY.is_file():
        sys.exit(f"soak: no binary at {BINARY}; build it (cargo build --release) or set JIRA_USERPROPS_BIN")
    if shutil.which("wrk") is None:
        sys.exit("soak: wrk is not on the PATH (bench/run.sh installs it)")
    slices = max(1, round(args.minutes * 60 / args.slice))
    directory = tempfile.mkdtemp(prefix="jira-userprops-soak-")
    server = None
    try:
        if args.database_url:
            database_url, database = args.database_url, f"`{redact(args.database_url)}` as given"
        else:
            database_url = f"sqlite:{directory}/soak.db"
            database = "a fresh SQLite file in a temporary directory (WAL, `synchronous=FULL`)"
        server = Server(database_url, seed_file(directory), Path(directory) / "server.log")
        wal = WalWatch(database_url)
        samples = soak(server, wal, slices, args.slice, args.connections)
        wal.stop()
        minutes = by_minute(samples, args.slice)
        final = {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "hwm": server.status_kib("VmHWM"),
            "wal": wal.overall,
            "keys": server.stored_keys(),
            # Before the stop, which checkpoints the WAL away: a WAL that only grows is a soak finding.
            "files": ", ".join(f"`{f.name}` {f.stat().st_size / 1024:.0f} KiB" for f in sorted(Path(directory).glob("soak.db*"))),
        }
        server.stop()
        log = server.log()
        final["log"], final["log_lines"] = log, len(log.splitlines())
        errors = sum(s["errors"] for s in samples)
        flat, tolerance = memory_verdict(minutes)
        wal_bounded = wal_verdict(minutes)
        if errors == 0 and flat and wal_bounded is not False:
            bounded = ", WAL bounded" if wal_bounded else ""
            final["verdict"] = f"**Verdict: no errors, memory flat{bounded}.**"
        else:
            problems = [f"{errors} errors" if errors else "no errors"]
            if flat is None:
                problems.append("memory not judged (under 3 minutes)")
            elif not flat:
                problems.append(f"memory NOT flat (last minute off the second by more than {tolerance / MIB:.1f} MiB)")
            else:
                problems.append("memory flat")
            if wal_bounded is False:
                problems.append("WAL NOT bounded (the last minute's peak passed the second minute's)")
            final["verdict"] = f"**Verdict: {', '.join(problems)}.**"
        report = render(args, {"database": database, "duration": f"{args.minutes:g} minutes" if args.minutes >= 1 else f"{slices * args.slice} s"}, samples, minutes, final)
        if args.smoke:
            print(report)
        else:
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(report)
            print(f"wrote {out}")
        print(final["verdict"].strip("*"))
        sys.exit(1 if errors or flat is False or wal_bounded is False else 0)
    finally:
        if server and server.process.poll() is None:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
