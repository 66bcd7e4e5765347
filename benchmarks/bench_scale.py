"""Catalogue-scale jobs on a local Dask cluster: embed, index, recommend.

(a) batch embedding (``embed_catalogue``): files/s and realtime factor with 1
    and 2 worker processes (one thread each, one torch thread), the same
    files and model, on an already started cluster;
(b)/(c) vectors -> neighbours -> store (``build_store_from_vectors``, the
    nndescent index, 10 neighbours) on synthetic 64-d vectors (a mixture of
    Gaussian clusters, as embeddings are) at each ``--sizes``: the index fitted
    once, the lists taken from its neighbour graph (the default) and, unless
    ``--no-search``, also searched on the workers, with the overlap of the two
    stores' lists, the time of each stage, the peak resident memory of the client and of each worker
    process, and the store's ``similar`` latency (p50/p99 over 10^4 random ids)
    at each size; the largest size gives the extrapolation to 10^7;
(d) recommendations on the smallest store (or ``--store``) for ``--users``
    synthetic users (20 tracks each, drawn around a few random tracks): in one
    process, the per-user ``SimilarityStore.recommend`` (the reference) beside
    the bulk scoring ``recommend_users`` (rows read per part, or the whole store
    in memory) on the same users, users/s of wall and CPU time, lists checked
    equal; then ``recommend_all`` on 2 workers: users/s.

Run::

    nice -n 10 .venv/bin/python benchmarks/bench_scale.py            # full
    .venv/bin/python benchmarks/bench_scale.py --quick               # smoke run

The table is printed (reStructuredText) and written to
``docs/benchmarks/scale.rst``.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_name  # noqa: E402

DIM = 64
K = 10


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cluster(n_workers):
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        memory_limit=0,
    )
    return cluster, Client(cluster)


def _workers_cpu(client):
    """CPU seconds used so far by all the worker processes together."""
    return sum(client.run(time.process_time).values())


def _worker_peaks(client):
    return sorted(client.run(_rss_mib).values())


# --------------------------------------------------------------------------- #
# (a) embedding
# --------------------------------------------------------------------------- #
def bench_embed(tmp, n_files, seconds):
    import soundfile as sf
    from sklearn.pipeline import make_pipeline

    from sklearn_music import ConvEmbedder, MelSpectrogramTransformer
    from sklearn_music.batch import embed_catalogue
    from sklearn_music.datasets import make_tracks

    sr = 16000
    folder = tmp / "music"
    folder.mkdir()
    tracks = make_tracks(n_files, n_genres=4, duration=seconds, sr=sr, random_state=0)
    for i, x in enumerate(tracks.data):
        sf.write(folder / f"{i:05d}.wav", x, sr)
    paths = sorted(str(p) for p in folder.glob("*.wav"))
    mel = MelSpectrogramTransformer(sr=sr, n_mels=96).fit(paths[:1])
    specs = mel.transform(paths[:16])
    emb = ConvEmbedder(embedding_dim=64, max_epochs=1, random_state=0)
    emb.fit(specs, np.arange(len(specs)) % 4)
    model = make_pipeline(mel, emb)
    rows = []
    for n_workers in (1, 2):
        cluster, client = _cluster(n_workers)
        with cluster, client:
            # warm-up: imports (torch...) and the model on every worker, not timed
            warm = tmp / f"warm{n_workers}.txt"
            warm.write_text("\n".join(paths[:n_workers]))
            embed_catalogue(
                model,
                warm,
                tmp / f"warm{n_workers}",
                scheduler=client,
                partition_size=1,
                progress=False,
            )
            load = os.getloadavg()[0]
            cpu0 = _workers_cpu(client)
            t0 = time.perf_counter()
            out = embed_catalogue(
                model,
                folder,
                tmp / f"vec{n_workers}",
                scheduler=client,
                partition_size=max(1, n_files // 16),
                progress=False,
            )
            wall = time.perf_counter() - t0
            cpu = _workers_cpu(client) - cpu0
            load = (load + os.getloadavg()[0]) / 2
        assert out["n_tracks"] == n_files
        rows.append(
            {
                "workers": n_workers,
                "files_s": n_files / wall,
                "rtf": n_files * seconds / wall,
                "wall": wall,
                "cpu_per_file": cpu / n_files,
                "load": load,
            }
        )
        print(f"embed {n_workers} worker(s): {rows[-1]}", flush=True)
    return rows


# --------------------------------------------------------------------------- #
# (b, c) vectors -> neighbours -> store
# --------------------------------------------------------------------------- #
def synthetic_vectors(n, seed=0, n_clusters=1000):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, DIM)).astype(np.float32)
    X = centres[rng.integers(0, n_clusters, size=n)]
    X += 0.5 * rng.normal(size=X.shape).astype(np.float32)
    return X


def write_shards(folder, X, shard_rows=100_000):
    from sklearn_music.batch._shards import shard_name, vectors_table, write_parquet_atomic

    folder.mkdir(parents=True)
    for i, lo in enumerate(range(0, len(X), shard_rows)):
        hi = min(len(X), lo + shard_rows)
        ids = [f"album-{j // 12:07d}/track-{j:08d}.ogg" for j in range(lo, hi)]
        write_parquet_atomic(vectors_table(ids, X[lo:hi]), folder / shard_name(i))


def _warm_up(client, n_workers):
    """Compile pynndescent's numba code here and on every worker (not timed per track)."""
    from dask.distributed import wait

    from sklearn_music.batch._neighbours import _fit_index, top_k_block

    t0 = time.perf_counter()
    index = _fit_index(synthetic_vectors(2000, seed=9), K, "cosine", "nndescent", None, 0, 1)
    shared = client.scatter(index, broadcast=True, hash=False)
    futs = [
        client.submit(top_k_block, shared, 0, 100, K, "cosine", workers=[w], pure=False)
        for w in client.scheduler_info()["workers"]
    ]
    wait(futs)
    return time.perf_counter() - t0


def _similar_latency(path, n):
    """p50 and p99 of ``similar`` in microseconds, measured in a fresh process.

    A service process opens the store and serves lookups; measured in this
    process instead, right after a cluster shut down and millions of ids were
    freed, the p99 at 10^6 tracks was 182 us against 22 us in a fresh one.
    """
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_similar_latency_here, (str(path), n))


def _similar_latency_here(path, n):
    """p50 and p99 of ``similar`` in microseconds over 10^4 random ids (10^3 warm-up)."""
    from sklearn_music.store import SimilarityStore

    store = SimilarityStore(path)
    rng = np.random.default_rng(1)
    probe = [f"album-{j // 12:07d}/track-{j:08d}.ogg" for j in rng.integers(0, n, 10_000)]
    for tid in probe[:1000]:
        store.similar(tid)
    lat = []
    for tid in probe:
        t0 = time.perf_counter_ns()
        store.similar(tid)
        lat.append(time.perf_counter_ns() - t0)
    store.close()
    lat = np.array(lat) / 1000
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99))


def _lists_overlap(path_a, path_b, n, n_probe=2000):
    """Mean overlap of the top-10 lists of two stores over ``n_probe`` random tracks."""
    from sklearn_music.store import SimilarityStore

    rng = np.random.default_rng(2)
    probe = [f"album-{j // 12:07d}/track-{j:08d}.ogg" for j in rng.integers(0, n, n_probe)]
    with SimilarityStore(path_a) as a, SimilarityStore(path_b) as b:
        return float(
            np.mean(
                [
                    len({t for t, _ in a.similar(p)} & {t for t, _ in b.similar(p)}) / K
                    for p in probe
                ]
            )
        )


def bench_store(tmp, n, n_workers=2, search=True):
    """Each stage of build_store_from_vectors, timed (it streams the last two).

    The index is fitted once; the lists come from its neighbour graph (the
    default, ``neighbours_from="graph"``) and, with ``search``, also from a
    search on the workers, each written to its own store.
    """
    from sklearn_music.batch import _shards
    from sklearn_music.batch._neighbours import (
        _fit_index,
        _graph_blocks,
        _stream_blocks,
        graph_candidates,
    )
    from sklearn_music.store import _format as fmt
    from sklearn_music.store._write import write_store_blocks

    X = synthetic_vectors(n)
    write_shards(tmp / f"vec{n}", X)
    del X
    path, path_s = tmp / f"store{n}.db", tmp / f"store{n}_search.db"
    cluster, client = _cluster(n_workers)
    with cluster, client:
        warm = _warm_up(client, n_workers)
        load = [os.getloadavg()[0]]
        t = {}
        t0 = time.perf_counter()
        ids, X = _shards.read_vectors(tmp / f"vec{n}")
        X, keys, id_type = fmt.check_tracks(X, ids, metric="cosine")
        order = np.argsort(np.asarray(keys, dtype=object), kind="stable")
        keys = [keys[i] for i in order]
        X = X[order]
        del ids, order
        t["read"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        index = _fit_index(X, K, "cosine", "nndescent", None, 0, n_workers)
        t["index"] = time.perf_counter() - t0
        load.append(os.getloadavg()[0])
        t0 = time.perf_counter()
        blocks = _graph_blocks(
            index.vectors_, graph_candidates(index), n, K, "cosine", 20000, False
        )
        write_store_blocks(path, X, keys, id_type, blocks, metric="cosine", n_neighbors=K)
        t["graph+write"] = time.perf_counter() - t0
        load.append(os.getloadavg()[0])
        client_peak = _rss_mib()
        if search:
            t0 = time.perf_counter()
            shared = client.scatter(index, broadcast=True, hash=False)
            t["ship"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            blocks = _stream_blocks(client, shared, n, K, "cosine", 20000, False)
            write_store_blocks(path_s, X, keys, id_type, blocks, metric="cosine", n_neighbors=K)
            t["search+write"] = time.perf_counter() - t0
            load.append(os.getloadavg()[0])
        workers = _worker_peaks(client)
        del index
    del X, keys
    p50, p99 = _similar_latency(path, n)
    row = {
        "n": n,
        **t,
        "total": t["read"] + t["index"] + t["graph+write"],
        "total_search": t["read"]
        + t["index"]
        + t.get("ship", np.nan)
        + t.get("search+write", np.nan),
        "overlap": _lists_overlap(path, path_s, n) if search else np.nan,
        "warm_up": warm,
        "client_mib": client_peak,
        "worker_mib": max(workers),
        "store_bytes": path.stat().st_size,
        "p50_us": p50,
        "p99_us": p99,
        "load": float(np.mean(load)),
    }
    path_s.unlink(missing_ok=True)
    print(f"store {n}: {row}", flush=True)
    return row


# --------------------------------------------------------------------------- #
# (d) recommendations
# --------------------------------------------------------------------------- #
class _Clock:
    """Wall and CPU seconds since the last lap (CPU time: this process, all threads)."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self):
        wall, cpu = time.perf_counter(), time.process_time()
        out = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return out


def bench_recommend(tmp, store_path, n_tracks, n_users, n_workers=2, n_ref=1000):
    """recommend_all on a cluster, and in one process the per-user lookups of
    ``SimilarityStore.recommend`` (the reference) beside the bulk scoring of a part
    (``recommend_users``) on the same users, same store."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sklearn_music.batch import recommend_all
    from sklearn_music.batch._recommend import recommend_users, resident_rows
    from sklearn_music.store import SimilarityStore

    rng = np.random.default_rng(2)
    per_user = 20
    users = np.repeat(np.arange(n_users), per_user)
    # 4 seed tracks per user, 5 tracks close in id order around each (same "album")
    seeds = rng.integers(0, n_tracks - 5, size=(n_users, 4))
    tracks = (seeds[:, :, None] + np.arange(5)[None, None, :]).reshape(-1)
    ids = [f"album-{j // 12:07d}/track-{j:08d}.ogg" for j in tracks]
    pq.write_table(pa.table({"user_id": users, "track_id": ids}), tmp / "plays.parquet")
    histories = [ids[u * per_user : (u + 1) * per_user] for u in range(min(n_users, 5000))]
    load = [os.getloadavg()[0]]
    with SimilarityStore(store_path) as store:
        clock = _Clock()
        ref = [store.recommend([t for t in h if t in store], k=10) for h in histories[:n_ref]]
        t_ref = clock.lap()
        bulk = recommend_users(store, histories[:n_ref], n=10)
        t_bulk = clock.lap()
        recommend_users(store, histories, n=10)
        t_part = clock.lap()
        rows = resident_rows(store)
        t_load = clock.lap()
        resident = recommend_users(store, histories[:n_ref], n=10, rows=rows)
        t_res = clock.lap()
        del rows
    assert bulk == ref == resident, "recommend_users differs from SimilarityStore.recommend"
    load.append(os.getloadavg()[0])
    cluster, client = _cluster(n_workers)
    with cluster, client:
        load.append(os.getloadavg()[0])
        t0 = time.perf_counter()
        out = recommend_all(
            tmp / "plays.parquet", store_path, tmp / "recs", n=10, scheduler=client, progress=False
        )
        wall = time.perf_counter() - t0
        load.append(os.getloadavg()[0])
    row = {
        "users": out["n_users"],
        "wall": wall,
        "users_s": out["n_users"] / wall,
        "n_ref": n_ref,
        "ref_users_s": n_ref / t_ref[0],
        "bulk_users_s": n_ref / t_bulk[0],
        "ref_users_cpu_s": n_ref / t_ref[1],
        "bulk_users_cpu_s": n_ref / t_bulk[1],
        "n_part": len(histories),
        "part_users_s": len(histories) / t_part[0],
        "part_users_cpu_s": len(histories) / t_part[1],
        "load_s": t_load,
        "resident_users_s": n_ref / t_res[0],
        "resident_users_cpu_s": n_ref / t_res[1],
        "load": float(np.mean(load)),
    }
    print(f"recommend: {row}", flush=True)
    return row


# --------------------------------------------------------------------------- #
# report
# --------------------------------------------------------------------------- #
def _fit_curve(rows):
    """Fit total time = a * n^b on the measured sizes; return (a, b)."""
    n = np.array([r["n"] for r in rows], dtype=float)
    t = np.array([r["total"] for r in rows])
    b, loga = np.polyfit(np.log(n), np.log(t), 1) if len(rows) > 1 else (1.0, np.log(t[0] / n[0]))
    return float(np.exp(loga)), float(b)


def _runs_lines(parts):
    """The header lines: each run (command, time) and the parts it gave."""
    by_run = {}
    for name, (rows, run) in parts.items():
        if rows:
            by_run.setdefault((run["command"], run["date"]), []).append(name)
    letters = {"embed": "(a)", "store": "(b, c)", "recommend": "(d)"}
    lines = [
        f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
        "``load`` is the 1-minute load average while the stage ran (the machine is "
        "shared). Made by:",
        "",
    ]
    for (command, date), names in by_run.items():
        lines.append(f"- {' '.join(letters[n] for n in names)}: ``{command}``, {date};")
    return lines


def report(parts, args):
    """Write the page from ``parts``: ``{part: (rows, run)}``, ``run`` a run's settings."""
    embed_rows, embed_run = parts["embed"]
    store_rows, _ = parts["store"]
    rec_row, rec_run = parts["recommend"]
    lines = [
        "Catalogue scale on a local Dask cluster",
        "=======================================",
        "",
        *_runs_lines(parts),
        "",
        "(a) Batch embedding (16 kHz, 96 mels, ConvEmbedder 64-d), "
        f"{embed_run.get('files')} files of {embed_run.get('seconds', 0):g} s",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - workers",
        "     - files/s",
        "     - realtime factor",
        "     - wall (s)",
        "     - worker CPU s per file",
        "     - load",
    ]
    for r in embed_rows:
        lines += [
            f"   * - {r['workers']}",
            f"     - {r['files_s']:.2f}",
            f"     - {r['rtf']:.0f}x",
            f"     - {r['wall']:.1f}",
            f"     - {r.get('cpu_per_file', float('nan')):.3f}",
            f"     - {r['load']:.1f}",
        ]
    if len(embed_rows) == 2:
        lines += [
            "",
            f"Speed-up with 2 workers: {embed_rows[1]['files_s'] / embed_rows[0]['files_s']:.2f}x.",
        ]
    if store_rows:
        lines += _store_lines(store_rows)
    if rec_row:
        lines += _recommend_lines(rec_row, rec_run["store_size"])
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick and all(rows for rows, _ in parts.values()):
        out = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "scale.rst"
        out.write_text(text)


def _recommend_lines(r, store_size):
    ref, bulk, part = r["ref_users_s"], r["bulk_users_s"], r["part_users_s"]
    ref_cpu, bulk_cpu = r["ref_users_cpu_s"], r["bulk_users_cpu_s"]
    return [
        "",
        f"(d) Recommendations on the {store_size:,}-track store, 20 tracks per user, "
        f"10 per list (load {r['load']:.1f}). In one process, the same {r['n_ref']:,} "
        "users, users per second of wall time (of CPU time):",
        "",
        f"- per-user lookups, ``SimilarityStore.recommend`` (the reference, and the "
        f"code of ``recommend_all`` before): {ref:.0f} ({ref_cpu:.0f});",
        f"- bulk scoring of a part, ``recommend_users``: {bulk:.0f} ({bulk_cpu:.0f}), "
        f"{bulk / ref:.1f}x ({bulk_cpu / ref_cpu:.1f}x of CPU time), identical lists;",
        f"- a part of {r['n_part']:,} users (``recommend_all``'s default): {part:.0f} "
        f"({r['part_users_cpu_s']:.0f});",
        f"- the store in memory (``resident_rows``, read once per worker in "
        f"{r['load_s'][0]:.1f} s, {r['load_s'][1]:.1f} CPU s), then the same users: "
        f"{r['resident_users_s']:.0f} ({r['resident_users_cpu_s']:.0f}), "
        f"{r['resident_users_s'] / ref:.0f}x ({r['resident_users_cpu_s'] / ref_cpu:.0f}x "
        "of CPU time), identical lists.",
        "",
        f"``recommend_all``, {r['users']:,} users, 2 workers: {r['users_s']:.0f} users/s "
        f"({r['wall']:.1f} s, cluster start not counted); 10^6 users: "
        f"{1e6 / r['users_s'] / 60:.1f} min.",
    ]


def _store_lines(store_rows):
    a, b = _fit_curve(store_rows)
    big = store_rows[-1]
    per_track = big["total"] / big["n"]
    lines = [
        "",
        f"(b, c) Vectors -> neighbours -> store, {DIM}-d, {K} neighbours. The index is "
        "fitted once in the client (2 threads); the lists then come from its neighbour "
        "graph (the default, ``neighbours_from='graph'``, in the client) and, for "
        "comparison, from a search on 2 workers (``'search'``: the index shipped to each, "
        "every track searched). *overlap*: mean top-10 overlap of the two stores over "
        "2,000 random tracks. Peaks: resident memory of the client after the graph path "
        "and of the largest worker after the search; lookups on the graph store.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - tracks",
        "     - read (s)",
        "     - index (s)",
        "     - graph + write (s)",
        "     - total, graph (s)",
        "     - ship + search + write (s)",
        "     - total, search (s)",
        "     - overlap",
        "     - client / worker peak (MiB)",
        "     - store (MiB)",
        "     - similar p50 / p99 (us)",
        "     - load",
    ]
    for r in store_rows:
        lines += [
            f"   * - {r['n']:,}",
            f"     - {r['read']:.1f}",
            f"     - {r['index']:.1f}",
            f"     - {r['graph+write']:.1f}",
            f"     - {r['total']:.1f}",
            f"     - {r.get('ship', np.nan) + r.get('search+write', np.nan):.1f}",
            f"     - {r['total_search']:.1f}",
            f"     - {r['overlap']:.3f}",
            f"     - {r['client_mib']:.0f} / {r['worker_mib']:.0f}",
            f"     - {r['store_bytes'] / 2**20:.0f}",
            f"     - {r['p50_us']:.1f} / {r['p99_us']:.1f}",
            f"     - {r['load']:.1f}",
        ]
    t7 = a * 1e7**b
    lines += [
        "",
        f"Fit of the graph path's total over the sizes: total = {a:.3g} * n^{b:.2f} s; "
        f"extrapolated to 10^7 tracks: {t7 / 60:.0f} min (linear from the largest size: "
        f"{per_track * 1e7 / 60:.0f} min). Numba's first compilation (warm-up, "
        f"{store_rows[0]['warm_up']:.0f} s in the first size's cluster) is not counted.",
    ]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, no docs written")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--files", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--skip", nargs="*", default=[], choices=["embed", "store", "recommend"])
    parser.add_argument("--json", type=Path, help="also write the measured rows to this file")
    parser.add_argument(
        "--latency",
        nargs=2,
        metavar=("STORE", "N"),
        help="only the similar() latency (fresh process) on STORE, made by bench_store at size N",
    )
    parser.add_argument(
        "--no-search", action="store_true", help="(b, c): the graph path only, no search"
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        nargs="*",
        default=[],
        help="files written by --json of earlier runs: the rows of the parts this run skips",
    )
    parser.add_argument(
        "--store",
        type=Path,
        help="(d) on this store, made by an earlier run at --sizes[0], instead of a new one",
    )
    args = parser.parse_args()
    if args.latency:
        p50, p99 = _similar_latency(args.latency[0], int(args.latency[1]))
        print(f"similar p50 {p50:.1f} us, p99 {p99:.1f} us")
        return
    if args.quick:
        args.sizes, args.files, args.seconds, args.users = [5000, 20000], 4, 2.0, 1000
    with tempfile.TemporaryDirectory(prefix="bench_scale_", dir=os.environ.get("BENCH_TMP")) as d:
        tmp = Path(d)
        embed_rows = [] if "embed" in args.skip else bench_embed(tmp, args.files, args.seconds)
        store_rows = (
            []
            if "store" in args.skip
            else [bench_store(tmp, n, search=not args.no_search) for n in args.sizes]
        )
        rec_row = None
        store = args.store or tmp / f"store{args.sizes[0]}.db"
        if "recommend" not in args.skip and (store_rows or args.store):
            rec_row = bench_recommend(tmp, store, args.sizes[0], args.users)
        run = {
            "command": " ".join(["python", "benchmarks/bench_scale.py", *sys.argv[1:]]),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "files": args.files,
            "seconds": args.seconds,
            "store_size": args.sizes[0],
        }
        if args.json:
            rows = {"embed": embed_rows, "store": store_rows, "recommend": rec_row, "run": run}
            args.json.write_text(json.dumps(rows, indent=1))
        parts = {
            "embed": (embed_rows, run),
            "store": (store_rows, run),
            "recommend": (rec_row, run),
        }
        for path in args.from_json:
            earlier = json.loads(path.read_text())
            for name in args.skip:
                if earlier.get(name):
                    parts[name] = (earlier[name], earlier["run"])
        report(parts, args)


if __name__ == "__main__":
    main()
