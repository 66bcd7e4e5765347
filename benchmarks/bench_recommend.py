"""Recommendations from listening histories: the default search against the exhaustive
one, and the mean profile against the multi-interest aggregation (issue 14, item 6).

Simulated listeners (:func:`sklearn_music.datasets.make_listening`) with several tastes
(at least two labels with a planted taste above 1) play tracks of a store; half of each
user's distinct played tracks (at most 10) are the history, the other half are held out.
``SimilarityStore.recommend(history, k=10)`` is asked with ``aggregate="mean"`` and
``"clusters"``, by the search of the stored similar-track lists (the default above 1024
tracks; forced here on smaller stores) and by the exhaustive scan. Per cell: held-out
plays among the 10 (hits), the history's tastes (labels with at least two history
tracks) that get at least one recommended track, the top-10 overlap with the exhaustive
answer, the vectors read per query and the time per query.

Two stores: the built-in data (MFCC statistics of 320 ``make_tracks`` tracks of 6 s, the
demo's collection; genre labels) and, with ``--data`` or ``$SKLEARN_MUSIC_DATA``, the 8
open albums of the ``dev`` set embedded by the pretrained ``soundtracks-v1`` model with
``sklearn-music index`` (album labels). Writes ``docs/benchmarks/recommend.rst``.

    python benchmarks/bench_recommend.py --data /path/to/data --workdir /tmp/rec
"""

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import cpu_name
from _dev_store import dev_store

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "recommend.rst"
SEARCHES = {"stored lists": False, "exhaustive": True}
AGGREGATES = ("mean", "clusters")


def builtin_store(workdir, n_tracks):
    """MFCC statistics of the demo's synthetic tracks in a store; ``(path, ids, genre)``."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_music import MFCCStatistics
    from sklearn_music.datasets import make_tracks
    from sklearn_music.store import SimilarityStore

    tracks = make_tracks(n_tracks=n_tracks, duration=6.0, random_state=0)
    X = make_pipeline(MFCCStatistics(sr=tracks.sr), StandardScaler()).fit_transform(tracks.data)
    ids = [f"track{i:03d}" for i in range(n_tracks)]
    path = Path(workdir) / "builtin.db"
    SimilarityStore.build(path, X, ids, n_neighbors=10, random_state=0)
    return path, ids, np.asarray(tracks.genre)


def listeners(ids, labels, *, n_users, seed=0):
    """Histories and held-out tracks of simulated users with several tastes."""
    from sklearn_music.datasets import make_listening

    data = make_listening(labels, n_users=n_users, artist_weight=0.0, random_state=seed)
    rng = np.random.default_rng(seed)
    histories, held_out = [], []
    for u in np.flatnonzero((data.genre_taste > 1.0).sum(axis=1) >= 2):
        played = rng.permutation(data.plays[u].indices)
        half = min(10, len(played) // 2)
        if half >= 2:
            histories.append([ids[i] for i in played[:half]])
            held_out.append({ids[i] for i in played[half:]})
    return histories, held_out


def evaluate(path, ids, labels, histories, held_out):
    """One row per (aggregate, search): the measures of the module docstring."""
    from sklearn_music.store import SimilarityStore, _queries

    label = dict(zip(ids, labels))
    read = [0]
    plain = _queries._read_vectors

    def counted(store, keys):
        read[0] += len(keys)
        return plain(store, keys)

    rows, answers = [], {}
    _queries._read_vectors, scan_below = counted, _queries.SCAN_BELOW
    _queries.SCAN_BELOW = 0  # the search of the stored lists, whatever the store's size
    try:
        with SimilarityStore(path) as store:
            for aggregate in AGGREGATES:
                for name, exhaustive in SEARCHES.items():
                    read[0] = 0
                    t0 = time.perf_counter()
                    got = [
                        [
                            t
                            for t, _ in store.recommend(
                                h, k=10, exhaustive=exhaustive, aggregate=aggregate
                            )
                        ]
                        for h in histories
                    ]
                    per = (time.perf_counter() - t0) / len(histories)
                    answers[aggregate, name] = got
                    rows.append(
                        _row(
                            aggregate,
                            name,
                            got,
                            histories,
                            held_out,
                            label,
                            per,
                            len(store) if exhaustive else read[0] / len(histories),
                        )
                    )
    finally:
        _queries._read_vectors, _queries.SCAN_BELOW = plain, scan_below
    for row in rows:
        ref = answers[row["aggregate"], "exhaustive"]
        mine = answers[row["aggregate"], row["search"]]
        row["overlap"] = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(mine, ref)])
    return rows


def _row(aggregate, search, got, histories, held_out, label, seconds, vectors):
    hits = [len(set(rec) & held) for rec, held in zip(got, held_out)]
    kept = []
    for rec, history in zip(got, histories):
        counts = {}
        for t in history:
            counts[label[t]] = counts.get(label[t], 0) + 1
        tastes = {lab for lab, c in counts.items() if c >= 2}
        if tastes:
            kept.append(len(tastes & {label[t] for t in rec}) / len(tastes))
    return dict(
        aggregate=aggregate,
        search=search,
        hits=np.mean(hits),
        kept=np.mean(kept),
        ms=seconds * 1e3,
        vectors=vectors,
    )


def chance(ids, histories, held_out):
    """Expected hits of 10 tracks drawn at random outside the history."""
    return np.mean([10 * len(h) / (len(ids) - len(hist)) for hist, h in zip(histories, held_out)])


def table(title, note, rows, base):
    lines = [title, "-" * len(title), "", note, "", ".. list-table::", "   :header-rows: 1", ""]
    head = [
        "aggregate",
        "search",
        "hits in 10",
        "tastes kept",
        "overlap with exhaustive",
        "vectors read",
        "ms / query",
    ]
    lines += ["   * - " + head[0], *(f"     - {h}" for h in head[1:])]
    for r in rows:
        cells = [
            r["aggregate"],
            r["search"],
            f"{r['hits']:.2f}",
            f"{r['kept']:.2f}",
            f"{r['overlap']:.3f}",
            f"{r['vectors']:.0f}",
            f"{r['ms']:.1f}",
        ]
        lines += ["   * - " + cells[0], *(f"     - {c}" for c in cells[1:])]
    lines += ["", f"Chance: {base:.2f} hits in 10 (10 tracks drawn outside the history).", ""]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        default=os.environ.get("SKLEARN_MUSIC_DATA"),
        help="data root holding dev/ (default: $SKLEARN_MUSIC_DATA)",
    )
    parser.add_argument("--workdir", help="where the stores go (default: a temporary folder)")
    parser.add_argument("--users", type=int, default=400, help="simulated users per store")
    parser.add_argument("--quick", action="store_true", help="a smoke run; writes nothing")
    args = parser.parse_args(argv)
    n_users, n_tracks = (100, 80) if args.quick else (args.users, 320)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir or tmp)
        path, ids, genre = builtin_store(workdir, n_tracks)
        hist, held = listeners(ids, genre, n_users=n_users)
        sections = table(
            "Built-in data",
            f"MFCC statistics of {n_tracks} ``make_tracks`` tracks (4 genres), 10 similar "
            f"tracks stored per track; {len(hist)} simulated users with at least two genre "
            "tastes.",
            evaluate(path, ids, genre, hist, held),
            chance(ids, hist, held),
        )
        if args.data and not args.quick:
            store, _, _ = dev_store(Path(args.data) / "dev", workdir)
            from sklearn_music.store import SimilarityStore

            with SimilarityStore(store) as s:
                ids = list(s)
            albums = np.array([t.split("/")[0] for t in ids])
            hist, held = listeners(ids, albums, n_users=n_users)
            sections += table(
                "Real music: the open dev albums",
                f"{len(ids)} tracks of 8 albums embedded by the pretrained ``soundtracks-v1`` "
                f"model (``sklearn-music index``), 10 similar tracks stored per track; "
                f"{len(hist)} simulated users with at least two album tastes.",
                evaluate(store, ids, albums, hist, held),
                chance(ids, hist, held),
            )
    if args.quick or not args.data:
        print("\n".join(sections))
        if not args.quick:
            print(
                "no data root (--data or $SKLEARN_MUSIC_DATA): the real-music table "
                f"needs one; {OUT} is left as it is",
                file=sys.stderr,
            )
        return
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = [
        "Recommendations from listening histories",
        "=" * 40,
        "",
        f"``benchmarks/bench_recommend.py --data $SKLEARN_MUSIC_DATA``, {stamp}, "
        f"{cpu_name()} ({os.cpu_count()} cores, shared with other jobs: times are "
        f"indicative), Python {platform.python_version()}.",
        "",
        " ".join(__doc__.split("\n\n")[1].split()),
        "",
        "``stored lists`` is the default search of ``recommend`` (best-first over the "
        "stored similar-track lists, exact scores); the store scans instead when it "
        "holds at most 1024 tracks, so on these small stores the default answer is "
        'the exhaustive one. ``clusters`` is ``aggregate="clusters"``: k-means of '
        "the history into at most 3 clusters, one list per cluster, merged in turn.",
        "",
    ]
    OUT.write_text("\n".join(head + sections))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
