"""Exact and approximate nearest tracks against the strongest peers, in one process.

On 64-dimensional clustered track vectors (a gaussian mixture with 1000 centres
in a 16-dimensional latent space, mapped to 64 dimensions, plus noise: learned
embeddings have a low intrinsic dimension) at 10^5 and 10^6 tracks, and on
harder data (2x10^5 vectors in 1000 full-rank clusters, ``--hard-size``), with
cosine distance, k=10 and 2000 held-out queries in one batch, it measures the
build time (s), queries per second and recall@10 of

- exact search: NumPy ``Q @ B.T`` + ``argpartition`` on whole rows in blocks of
  256 queries or fewer (the reference of this benchmark before, timed on the first
  ``--n-numpy`` queries); ``NearestTracks(algorithm="brute")`` (blocked
  products with a running top-k, sklearn_music._exact); faiss ``IndexFlatIP``
  when faiss is installed;
- approximate search: ``NearestTracks`` with pynndescent (default and tuned
  graph parameters, several ``epsilon``), with hnswlib (``algorithm="hnsw"``,
  several ``ef``), the same hnswlib index queried directly (no wrapper), and
  faiss ``IndexHNSWFlat`` (M=32) when installed.

Recall@10 is the share of the exact 10 nearest tracks returned, the exact ones
being those of ``NearestTracks(algorithm="brute")``, itself checked against
the NumPy reference. Each row's "vs peer" is its queries/s over that of the
strongest peer measured in the same process: faiss ``IndexFlatIP`` for exact
search (NumPy when faiss is missing), and for approximate search the fastest
hnswlib row (queried directly) with recall@10 >= 0.99 (else its most accurate).

Usage::

    python benchmarks/bench_ann.py [--quick] [--sizes 100000 1000000] [--hard-size 200000]

The peers are optional (``pip install sklearn_music[bench]``: hnswlib,
faiss-cpu); rows of a missing peer are left out. The table is printed in
reStructuredText and written to docs/benchmarks/ann.rst (``--output``) after
each method, so a long run leaves what it measured so far.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, os.pardir, "docs", "benchmarks", "ann.rst")
K = 10
TUNED = {"n_neighbors": 48, "pruning_degree_multiplier": 2.0, "diversify_prob": 0.5}


def mixture(n, dim, n_centres, *, cluster_std, latent_dim, noise_std, random_state):
    """float32 vectors: a gaussian mixture in a latent space, mapped linearly to ``dim``.

    Latent points are one of ``n_centres`` unit-variance centres plus
    ``cluster_std`` gaussian noise in ``latent_dim`` dimensions; a fixed random
    ``latent_dim x dim`` map embeds them in ``dim`` dimensions, plus isotropic
    noise of std ``noise_std`` (relative to the signal's per-dimension std).
    ``latent_dim=dim, noise_std=0`` gives plain full-dimensional clusters.
    """
    rng = np.random.default_rng(random_state)
    fixed = np.random.default_rng(12345)
    centres = fixed.normal(size=(n_centres, latent_dim)).astype(np.float32)
    W = (fixed.normal(size=(latent_dim, dim)) / np.sqrt(latent_dim)).astype(np.float32)
    signal_std = np.sqrt(1.0 + cluster_std**2)
    X = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(start + 100_000, n)
        labels = rng.integers(0, n_centres, stop - start)
        Z = centres[labels] + cluster_std * rng.standard_normal(
            (stop - start, latent_dim), dtype=np.float32
        )
        X[start:stop] = Z @ W + (noise_std * signal_std) * rng.standard_normal(
            (stop - start, dim), dtype=np.float32
        )
    return X


def normalise(X):
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, np.finfo(X.dtype).tiny)


def numpy_exact(Qn, Bn, k, block=256):
    """The NumPy reference: whole rows of ``Q @ B.T`` and ``argpartition`` (indices).

    Blocks of ``block`` queries, fewer for a large ``Bn`` (at most 2^24 scores, so
    that the score block and argpartition's copies stay within ~250 MB).
    """
    block = max(1, min(block, 2**24 // Bn.shape[0]))
    out = np.empty((Qn.shape[0], k), dtype=np.intp)
    for start in range(0, Qn.shape[0], block):
        S = Qn[start : start + block] @ Bn.T
        part = np.argpartition(-S, k - 1, axis=1)[:, :k]
        s = np.take_along_axis(S, part, axis=1)
        out[start : start + block] = np.take_along_axis(part, np.argsort(-s, axis=1), axis=1)
    return out


def recall(approx, exact):
    hits = sum(len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approx, exact))
    return hits / exact.size


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _row(data, n, kind, method, params, build_s, n_queries, query_s, rec):
    row = {
        "data": data,
        "n": n,
        "kind": kind,
        "method": method,
        "params": params,
        "build_s": build_s,
        "qps": n_queries / query_s,
        "recall": rec,
    }
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def exact_rows(data, X, Q, args):
    """Exact rows; returns (rows, exact indices of all queries)."""
    from sklearn_music import NearestTracks

    n = len(X)
    rows = []
    nt, build = _timed(lambda: NearestTracks(algorithm="brute", n_jobs=args.n_jobs).fit(X))
    nt.kneighbors(Q[:10], K)
    exact, secs = _timed(lambda: nt.kneighbors(Q, K, return_distance=False))
    sub = min(args.n_numpy, len(Q))
    Bn = nt.vectors_
    with threadpool_limits(args.n_jobs, user_api="blas"):
        ref, numpy_s = _timed(lambda: numpy_exact(normalise(Q[:sub]), Bn, K))
    rows.append(_row(data, n, "exact", "NumPy GEMM + argpartition", "", None, sub, numpy_s, 1.0))
    rows[-1]["recall"] = recall(ref, exact[:sub])  # the two exact searches agree
    rows.append(
        _row(data, n, "exact", "NearestTracks brute", "", build, len(Q), secs, recall(exact, exact))
    )
    faiss = _import("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(args.n_jobs)
        flat = faiss.IndexFlatIP(X.shape[1])
        _, build = _timed(lambda: flat.add(Bn))
        flat.search(normalise(Q[:10]), K)
        (_, ind), secs = _timed(lambda: flat.search(normalise(Q), K))
        rows.append(
            _row(data, n, "exact", "faiss IndexFlatIP", "", build, len(Q), secs, recall(ind, exact))
        )
    return rows, exact


def _import(name):
    try:
        return __import__(name)
    except ImportError:
        return None


def nndescent_rows(data, X, Q, exact, args):
    from sklearn_music import NearestTracks

    rows = []
    graphs = {"default": ("default graph", {}), "tuned": ("tuned graph", TUNED)}
    for label, graph in (graphs[name] for name in args.graphs):
        params = {**graph, "parallel_batch_queries": True}
        nn = NearestTracks(
            algorithm="nndescent", index_params=params, random_state=0, n_jobs=args.n_jobs
        )
        _, build = _timed(lambda nn=nn: nn.fit(X))
        for epsilon in args.epsilon:  # a query-time parameter: no rebuild
            nn.set_params(epsilon=epsilon)
            nn.kneighbors(Q[:10], K)
            ind, secs = _timed(lambda nn=nn: nn.kneighbors(Q, K, return_distance=False))
            desc = f"{label} {graph or ''} epsilon={epsilon:g}".replace("  ", " ")
            rows.append(
                _row(data, len(X), "approx", "NearestTracks nndescent", desc, build, len(Q),
                     secs, recall(ind, exact))
            )  # fmt: skip
    return rows


def hnsw_rows(data, X, Q, exact, args):
    from sklearn_music import NearestTracks
    from sklearn_music._hnsw import hnsw_available

    if not hnsw_available():
        return []
    rows = []
    nn = NearestTracks(algorithm="hnsw", random_state=0, n_jobs=args.n_jobs)
    _, build = _timed(lambda: nn.fit(X))
    Qn = normalise(Q)
    for ef in args.ef:
        nn.set_params(ef=ef)
        ind, secs = _timed(lambda: nn.kneighbors(Q, K, return_distance=False))
        rows.append(
            _row(data, len(X), "approx", "NearestTracks hnsw", f"M=16, ef={ef}", build,
                 len(Q), secs, recall(ind, exact))
        )  # fmt: skip
        nn.index_.set_ef(ef)  # the same hnswlib index, without the wrapper
        (ind, _), secs = _timed(lambda: nn.index_.knn_query(Qn, K, num_threads=args.n_jobs))
        rows.append(
            _row(data, len(X), "approx", "hnswlib (same index)", f"M=16, ef={ef}", build,
                 len(Q), secs, recall(ind, exact))
        )  # fmt: skip
    return rows


def faiss_hnsw_rows(data, X, Q, exact, args):
    faiss = _import("faiss")
    if faiss is None or not args.faiss_hnsw:
        return []
    faiss.omp_set_num_threads(args.n_jobs)
    index = faiss.IndexHNSWFlat(X.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    _, build = _timed(lambda: index.add(normalise(X)))
    Qn = normalise(Q)
    rows = []
    for ef in (64, 128):
        index.hnsw.efSearch = ef
        (_, ind), secs = _timed(lambda: index.search(Qn, K))
        rows.append(
            _row(data, len(X), "approx", "faiss IndexHNSWFlat", f"M=32, efSearch={ef}", build,
                 len(Q), secs, recall(ind, exact))
        )  # fmt: skip
    return rows


def run_data(data, n, args, rows, flush, **mixture_params):
    """Measure every method on one data set, appending to ``rows``; ``flush()`` after each."""
    X = mixture(n, args.dim, args.n_centres, **mixture_params, random_state=n)
    Q = mixture(args.n_queries, args.dim, args.n_centres, **mixture_params, random_state=n + 1)
    new, exact = exact_rows(data, X, Q, args)
    rows += new
    flush()
    for fn in (hnsw_rows, nndescent_rows, faiss_hnsw_rows):
        rows += fn(data, X, Q, exact, args)
        flush()


def _by_recall(row):
    return row["recall"], row["qps"]


def add_ratios(rows):
    """Each row's queries/s over the strongest peer's on the same data set."""
    for key in sorted({(r["data"], r["n"]) for r in rows}):
        same = [r for r in rows if (r["data"], r["n"]) == key]
        exact = [r for r in same if r["kind"] == "exact"]
        peer = next((r for r in exact if r["method"].startswith("faiss")), exact[0])
        for r in exact:
            r["vs"] = (r["qps"] / peer["qps"], "faiss flat" if peer is not exact[0] else "NumPy")
        hnsw = [r for r in same if r["method"].startswith("hnswlib")]
        good = [r for r in hnsw if r["recall"] >= 0.99]
        if hnsw:  # the fastest at recall >= 0.99, else the most accurate
            peer = max(good, key=lambda r: r["qps"]) if good else max(hnsw, key=_by_recall)
            for r in same:
                if r["kind"] == "approx":
                    r["vs"] = (r["qps"] / peer["qps"], f"hnswlib {peer['params']}")
    return rows


def _versions():
    import numba
    import pynndescent

    out = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    out.append(f"pynndescent {getattr(pynndescent, '__version__', '?')}")
    out.append(f"numba {numba.__version__}")
    for name in ("hnswlib", "faiss"):
        mod = _import(name)
        if mod is not None:
            out.append(f"{name} {getattr(mod, '__version__', '?')}")
    return ", ".join(out)


def table(rows, args, command):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    head = args.title
    lines = [
        head,
        "=" * len(head),
        "",
        f"Generated by ``{command}`` on {now}; machine: {os.cpu_count()} cores visible "
        f"({cpu}), {args.n_jobs} threads for every method; {_versions()}. "
        f"{args.note}",
        "",
        f"Data: {args.dim}-dimensional float32 vectors. *clustered*: a gaussian mixture "
        f"with {args.n_centres} centres and cluster std 1 in a 16-dimensional latent "
        f"space, mapped to {args.dim} dimensions by a fixed random linear map, plus "
        f"isotropic noise of relative std 0.1. *full-rank*: {args.n_centres} gaussian "
        f"clusters in all {args.dim} dimensions, mapped the same way, no noise "
        f"(harder: the 10 nearest tracks within a cluster are close to random). "
        f"Cosine distance, k={K}, "
        f"{args.n_queries} held-out queries in one batch. Recall@10: the share of the "
        f"exact 10 nearest returned (the NumPy row: its agreement with the exact path, "
        f"on the first {args.n_numpy} queries, which alone are timed for it). Build: "
        f"``fit`` (for exact search, normalising the vectors; numba compilation "
        f"excluded). *vs peer*: queries/s over the strongest peer's on the same data, "
        f"for exact search faiss ``IndexFlatIP``, for approximate search the fastest "
        f"hnswlib setting with recall@10 >= 0.99, or its most accurate one if none "
        f"reaches 0.99 (the same index as ``NearestTracks "
        f"hnsw``, queried directly). pynndescent's tuned graph: ``{TUNED}``.",
        "",
        ".. list-table:: Exact and approximate nearest tracks",
        "   :header-rows: 1",
        "",
    ]
    header = ["data", "tracks", "method", "settings", "build (s)", "queries/s", "recall@10"]
    lines.append("   * - " + "\n     - ".join(header + ["vs peer"]))
    for r in rows:
        vs = r.get("vs")
        cells = [
            r["data"],
            f"{r['n']:,}",
            r["method"],
            r["params"] or "-",
            "-" if r["build_s"] is None else f"{r['build_s']:.1f}",
            f"{r['qps']:,.0f}",
            f"{r['recall']:.3f}",
            "-" if vs is None else f"{vs[0]:.2f}x {vs[1]}",
        ]
        lines.append("   * - " + "\n     - ".join(cells))
    return "\n".join(lines) + "\n"


def write(text, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def warm_up(args):
    from sklearn_music import NearestTracks

    X = mixture(2000, args.dim, 20, cluster_std=1.0, latent_dim=16, noise_std=0.1, random_state=0)
    nn = NearestTracks(
        algorithm="nndescent",
        index_params={"parallel_batch_queries": True},
        random_state=0,
        n_jobs=args.n_jobs,
    )
    nn.fit(X).kneighbors(X[:100])


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="10^4 and 2x10^4 (hard) only")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--hard-size", type=int, default=200_000, help="0: no hard data")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--n-centres", type=int, default=1000)
    parser.add_argument("--n-queries", type=int, default=2000)
    parser.add_argument("--n-numpy", type=int, default=500, help="queries timed for NumPy")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--epsilon", type=float, nargs="+", default=[0.3, 0.6])
    parser.add_argument("--ef", type=int, nargs="+", default=[50, 100])
    parser.add_argument(
        "--graphs",
        nargs="+",
        choices=["default", "tuned"],
        default=["default", "tuned"],
        help="pynndescent graphs built: default and/or tuned parameters",
    )
    parser.add_argument("--no-faiss-hnsw", dest="faiss_hnsw", action="store_false")
    parser.add_argument("--note", default="", help="a sentence for the docs (machine load)")
    parser.add_argument(
        "--title", default="Nearest tracks: exact and approximate search against faiss and hnswlib"
    )
    parser.add_argument(
        "--from-json", nargs="+", help="only write the table of the JSON rows in these files"
    )
    parser.add_argument("--command", help="with --from-json: the command that measured them")
    parser.add_argument("--output", default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.hard_size = [10_000], 20_000
    return args


def _command(argv):
    """The command line of this run, without the --note, --title and --from-json texts."""
    words, skipping = [], False
    for word in argv:
        if word in ("--note", "--title", "--from-json", "--command"):
            skipping = True
        elif not (skipping and not word.startswith("--")):
            skipping = False
            words.append(word)
    return " ".join(["python benchmarks/bench_ann.py", *words])


def main(argv=None):
    args = parse(argv)
    command = _command(sys.argv[1:] if argv is None else argv)
    rows = []
    if args.from_json:  # the rows a run printed on stderr, e.g. one cut short
        for path in args.from_json:
            with open(path) as f:
                rows += [json.loads(line) for line in f if line.startswith("{")]
        text = table(add_ratios(rows), args, args.command or command)
        write(text, args.output)
        print(text)
        return 0
    warm_up(args)
    datasets = [("clustered", n, {"latent_dim": 16, "noise_std": 0.1}) for n in args.sizes]
    if args.hard_size:  # before the largest size: the long run leaves it measured first
        hard = ("full-rank", args.hard_size, {"latent_dim": args.dim, "noise_std": 0.0})
        datasets.insert(min(1, len(datasets)), hard)

    def flush():
        write(table(add_ratios(rows), args, command), args.output)

    for data, n, params in datasets:
        run_data(data, n, args, rows, flush, cluster_std=1.0, **params)
    print(table(rows, args, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
