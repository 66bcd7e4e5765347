"""Load test of ``sklearn-music serve``: lookups over HTTP while the store is swapped.

The server (``python -m sklearn_music serve``) runs as a subprocess on
127.0.0.1; an asyncio client keeps ``--clients`` HTTP/1.1 keep-alive
connections busy with ``GET /tracks/{id}/similar?k=10`` for random stored ids
for ``--seconds`` (both store files are read once before, to start in the page
cache, and a 2-second warm-up run precedes the measured one). Meanwhile the
store file is atomically replaced ``--swaps`` times, alternating between two
versions (the second is the first plus 100 tracks added with
``SimilarityStore.add``), as a rebuild would; every
response is checked (status 200, 10 results, the version header names a
version the client knows). It prints requests/s, p50/p99/p99.9 latency and the
failed requests, plus, side by side, the rate of direct in-process
``SimilarityStore.similar`` calls on the same file (the floor the HTTP layer
adds to).

The store is built once into ``--workdir`` (random 64-d vectors, string ids
like ``album-00042/track-0001234.ogg``, 10 neighbours per track) and reused by
later runs. As in ``bench_store.py``, at this size the neighbours come from a
cheap approximation (exact top-10 within blocks of tracks sorted along a random
projection) written by the store's own writer: the benchmark measures serving,
not the index.

Run::

    python benchmarks/bench_serve.py                         # quick: 10^5 tracks, 15 s
    python benchmarks/bench_serve.py --seconds 60 --clients 64 --tracks 1000000

The client runs on the same cores as the server; ``--client-cpu`` and
``--server-cpu`` pin them (``os.sched_setaffinity``) when the machine has the
cores to spare.
"""

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
from _common import cpu_name

from sklearn_music.store import SimilarityStore

DIM = 64
K = 10
N_ADD = 100


def _ids(n):
    return [f"album-{i // 12:05d}/track-{i:07d}.ogg" for i in range(n)]


def _writer_and_search():
    """The store's private writer and search helpers (module or package layout)."""
    try:
        from sklearn_music.store import _prepare, _scores, _top_k, _write_store
    except ImportError:  # the store as a package
        from sklearn_music.store._search import prepare as _prepare
        from sklearn_music.store._search import scores as _scores
        from sklearn_music.store._search import top_k as _top_k
        from sklearn_music.store._write import write_store as _write_store
    return _write_store, _prepare, _scores, _top_k


def _cheap_neighbors(X, k, prepare, scores, top_k, block=256, seed=0):
    """Exact top-k within blocks of tracks sorted along a random projection."""
    rng = np.random.default_rng(seed)
    order = np.argsort(X @ rng.normal(size=X.shape[1]))
    n = len(X)
    idx = [None] * n
    out = [None] * n
    for start in range(0, n, block):
        rows = order[start : start + block]
        if len(rows) <= k:  # merge a short tail into the previous block
            rows = order[max(0, n - block) :]
        P = prepare(X[rows], "cosine")
        S = scores(P, P, "cosine")
        np.fill_diagonal(S, -np.inf)
        s, j = top_k(S, rows, k)
        for r, row in enumerate(rows):
            idx[row], out[row] = j[r], s[r]
    return idx, out


def build_stores(n, workdir):
    """Build (or reuse) the two versions of an n-track store; return their paths."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    a = workdir / f"serve-{n}-a.db"
    b = workdir / f"serve-{n}-b.db"
    rng = np.random.default_rng(n)
    if not a.exists():
        t0 = time.perf_counter()
        X = rng.normal(size=(n, DIM)).astype(np.float32)
        write, prepare, scores, top_k = _writer_and_search()
        idx, sc = _cheap_neighbors(X, K, prepare, scores, top_k)
        write(a, X, _ids(n), "str", idx, sc, metric="cosine", n_neighbors=K, batch_size=10000)
        print(f"built {a} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if not b.exists():
        t0 = time.perf_counter()
        tmp = workdir / f".serve-{n}-b.building"
        shutil.copyfile(a, tmp)
        new = np.random.default_rng(n + 1).normal(size=(N_ADD, DIM)).astype(np.float32)
        with SimilarityStore(tmp, mode="a") as store:
            store.add(new, [f"new/track-{i:04d}.ogg" for i in range(N_ADD)])
        os.replace(tmp, b)
        print(f"built {b} (+{N_ADD} tracks) in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return a, b


# --------------------------------------------------------------------------- #
# the server and the store versions
# --------------------------------------------------------------------------- #
def _tag(path):
    st = os.stat(path)
    return f"{st.st_ino}-{st.st_mtime_ns}"


def _publish(src, live):
    """Replace ``live`` by ``src`` with os.replace, as a build or an add does."""
    tmp = live.with_name(f".{live.name}.swap")
    if tmp.exists():  # left by an interrupted run
        tmp.unlink()
    os.link(src, tmp)  # a new name for src's inode; src itself is kept
    os.replace(tmp, live)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(live, port, workers, cpus):
    cmd = [sys.executable, "-m", "sklearn_music", "serve", "--store", str(live)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    cmd += ["--check-interval-ms", "100"]
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    preexec = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    proc = subprocess.Popen(cmd, env=env, preexec_fn=preexec)
    deadline = time.monotonic() + 120
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("the server did not start") from None
            time.sleep(0.2)


# --------------------------------------------------------------------------- #
# the client: raw HTTP/1.1 keep-alive on asyncio streams (little client CPU)
# --------------------------------------------------------------------------- #
class _Tally:
    def __init__(self, versions):
        self.versions = versions
        self.latencies = []
        self.errors = {}
        self.seen = set()

    def error(self, what):
        self.errors[what] = self.errors.get(what, 0) + 1


async def _request(reader, writer, request):
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    i = lower.index(b"content-length:")
    n = int(lower[i + 15 : lower.index(b"\r\n", i)])
    return head, lower, await reader.readexactly(n)


async def _client(port, paths, deadline, tally, k, seed):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    clock = time.perf_counter
    rand = random.Random(seed)
    try:
        while clock() < deadline:
            request = rand.choice(paths)
            t0 = clock()
            try:
                head, lower, body = await _request(reader, writer, request)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                tally.error(f"connection: {type(exc).__name__}")
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            tally.latencies.append(clock() - t0)
            if not head.startswith(b"HTTP/1.1 200"):
                tally.error(head.split(b"\r\n", 1)[0].decode())
                continue
            i = lower.find(b"x-store-version:")
            version = lower[i + 16 : lower.index(b"\r\n", i)].strip().decode() if i >= 0 else None
            if version not in tally.versions:
                tally.error(f"unknown version {version}")
            elif body.count(b'"track_id"') != k:
                tally.error("wrong number of results")
            else:
                tally.seen.add(version)
    finally:
        writer.close()


async def _swapper(live, sources, n_swaps, seconds, log):
    for i in range(n_swaps):
        await asyncio.sleep(seconds / (n_swaps + 1))
        src = sources[(i + 1) % 2]
        _publish(src, live)
        log.append((time.perf_counter(), _tag(live)))


async def _load(port, paths, seconds, clients, k, live, sources, n_swaps, versions):
    tally = _Tally(versions)
    swaps = []
    deadline = time.perf_counter() + seconds
    tasks = [_client(port, paths, deadline, tally, k, j) for j in range(clients)]
    t0 = time.perf_counter()
    await asyncio.gather(_swapper(live, sources, n_swaps, seconds, swaps), *tasks)
    return tally, time.perf_counter() - t0, swaps


# --------------------------------------------------------------------------- #
# the baseline: direct in-process lookups on the same file
# --------------------------------------------------------------------------- #
def _direct(path, ids, seconds, k):
    lat = []
    clock = time.perf_counter
    rand = random.Random(0)
    with SimilarityStore(path) as store:
        deadline = clock() + seconds
        while clock() < deadline:
            tid = rand.choice(ids)
            t0 = clock()
            store.similar(tid, k=k)
            lat.append(clock() - t0)
    return len(lat) / sum(lat), np.asarray(lat)


def _cpu_seconds(pid):
    """User + system CPU seconds of a process and its children (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:  # fields[1]: ppid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _warm(path):
    """Read a file once, so that its pages start in the page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def _percentiles(lat):
    ms = np.asarray(lat) * 1e3
    return {q: float(np.percentile(ms, q)) for q in (50, 99, 99.9)}


def _get(port, path):
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read().decode()


def run(args):
    workdir = Path(args.workdir)
    a, b = build_stores(args.tracks, workdir)
    versions = {_tag(a), _tag(b)}
    live = workdir / f"serve-{args.tracks}-live.db"
    _publish(a, live)
    rng = np.random.default_rng(0)
    sample = rng.integers(0, args.tracks, size=min(args.tracks, 50_000))
    ids = [f"album-{i // 12:05d}/track-{i:07d}.ogg" for i in sample]  # as _ids(n)[i]
    paths = [
        f"GET /tracks/{quote(t, safe='')}/similar?k={K} HTTP/1.1\r\nHost: l\r\n\r\n".encode()
        for t in ids
    ]
    for path in (a, b):
        _warm(path)
    load_before = os.getloadavg()[0]
    direct_rate, direct_lat = _direct(a, ids, args.baseline_seconds, K)
    port = _free_port()
    if args.client_cpu:
        os.sched_setaffinity(0, args.client_cpu)
    proc = _start_server(live, port, args.workers, args.server_cpu)
    try:
        run_loop = _event_loop_runner()
        run_loop(_load(port, paths, 2.0, args.clients, K, live, (a, b), 0, versions))  # warm-up
        cpu0, own0 = _cpu_seconds(proc.pid), time.process_time()
        tally, elapsed, swaps = run_loop(
            _load(port, paths, args.seconds, args.clients, K, live, (a, b), args.swaps, versions)
        )
        server_cpu, client_cpu = _cpu_seconds(proc.pid) - cpu0, time.process_time() - own0
        time.sleep(0.3)
        final = json.loads(_get(port, "/health"))["version"]
    finally:
        proc.terminate()
        proc.wait(30)
    return {
        "tracks": args.tracks,
        "clients": args.clients,
        "workers": args.workers,
        "seconds": elapsed,
        "requests": len(tally.latencies),
        "rate": len(tally.latencies) / elapsed,
        "latency": _percentiles(tally.latencies),
        "errors": tally.errors,
        "failed": sum(tally.errors.values()),
        "swaps": len(swaps),
        "versions_seen": len(tally.seen),
        "final_version_ok": final == _tag(live),
        "server_cpu_us": server_cpu / len(tally.latencies) * 1e6,
        "client_cpu_us": client_cpu / len(tally.latencies) * 1e6,
        "load_average": (load_before, os.getloadavg()[0]),
        "direct_rate": direct_rate,
        "direct_latency": _percentiles(direct_lat),
    }


def _event_loop_runner():
    try:
        import uvloop

        return uvloop.run
    except ImportError:
        return asyncio.run


def table(r, command):
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lat, d = r["latency"], r["direct_latency"]
    return "\n".join(
        [
            f"``{command}``, {date}, {cpu_name()}, {os.cpu_count()} cores shared by the "
            "server and the client (and other work: 1-minute load average "
            f"{r['load_average'][0]:.1f} before the run, {r['load_average'][1]:.1f} after), "
            f"Python {platform.python_version()}.",
            "",
            ".. list-table::",
            "   :header-rows: 1",
            "",
            "   * - tracks",
            "     - clients",
            "     - workers",
            "     - seconds",
            "     - requests/s",
            "     - p50 (ms)",
            "     - p99 (ms)",
            "     - p99.9 (ms)",
            "     - failed",
            "     - swaps",
            "     - direct ``similar``/s",
            "     - HTTP / direct",
            "     - server CPU per request",
            "     - client CPU per request",
            f"   * - {r['tracks']:,}",
            f"     - {r['clients']}",
            f"     - {r['workers']}",
            f"     - {r['seconds']:.0f}",
            f"     - {r['rate']:,.0f}",
            f"     - {lat[50]:.2f}",
            f"     - {lat[99]:.2f}",
            f"     - {lat[99.9]:.2f}",
            f"     - {r['failed']}",
            f"     - {r['swaps']}",
            f"     - {r['direct_rate']:,.0f} (p50 {d[50] * 1e3:.0f} us)",
            f"     - {r['rate'] / r['direct_rate']:.3f}",
            f"     - {r['server_cpu_us']:.0f} us",
            f"     - {r['client_cpu_us']:.0f} us",
            "",
        ]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--swaps", type=int, default=10, help="store replacements in the run")
    parser.add_argument("--baseline-seconds", type=float, default=3.0)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "sm-bench-serve"))
    parser.add_argument("--server-cpu", type=int, nargs="*", help="CPUs for the server")
    parser.add_argument("--client-cpu", type=int, nargs="*", help="CPUs for the client")
    parser.add_argument("--output", help="also write the table (RST) to this file")
    parser.add_argument("--append", action="store_true", help="append to --output")
    args = parser.parse_args(argv)
    if args.seconds > 600 or args.clients > 1024:
        parser.error("--seconds is at most 600 and --clients at most 1024 (a bounded load)")
    r = run(args)
    command = "python benchmarks/bench_serve.py " + " ".join(argv or sys.argv[1:])
    text = table(r, command.strip())
    print(text)
    print(json.dumps(r, indent=1), file=sys.stderr)
    if args.output:
        with open(args.output, "a" if args.append else "w") as f:
            f.write(("\n" if args.append else "") + text)
    return 0 if r["failed"] == 0 and r["final_version_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
