"""Build time and size of the listening report on the open albums (issue #15).

Usage::

    python benchmarks/bench_report.py [--data $SKLEARN_MUSIC_DATA/dev] [--store dev.db]

Indexes the album folder with the pretrained ``soundtracks-v1`` pipeline (what
``sklearn-music index`` writes: ids are paths relative to the folder), unless
``--store`` names an existing store of it, then writes the report for 20 queries x 10
neighbours twice: with excerpts from the middle of the tracks (no model), and with the
model (representative moments and "why similar" heat maps). Goal: under a minute on 2
cores, under 50 MB. The wall time of a shared machine depends on its load, so the CPU
time of the process (all threads) is given beside it, with the load average. Writes
``docs/benchmarks/report.rst``.
"""

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_name  # noqa: E402

from sklearn_music import pretrained  # noqa: E402
from sklearn_music.datasets import load_audio_folder  # noqa: E402
from sklearn_music.report import write_report  # noqa: E402
from sklearn_music.store import SimilarityStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def build_store(music, path, model):
    files = [Path(str(f)) for f in load_audio_folder(music, labeled=False).filenames]
    ids = [f.relative_to(music).as_posix() for f in files]
    parts = [model.transform([str(f) for f in files[i : i + 16]]) for i in range(0, len(files), 16)]
    SimilarityStore.build(path, np.vstack(parts), ids, n_neighbors=10)


def measure(store, music, out, model, queries, k):
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    res = write_report(
        store, music_dir=music, out=out, queries=queries, k=k, model=model, random_state=0
    )
    return {
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "load": load,
        "size": res.size / 1e6,
        "files": sum(1 for p in Path(out).rglob("*") if p.is_file()),
        "tracks": res.n_tracks,
        "items": res.n_items,
    }


def table(rows, args, n_tracks):
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "Listening report",
        "================",
        "",
        f"``benchmarks/bench_report.py``, {now}, {cpu_name()}, {os.cpu_count()} CPU cores "
        "(shared with other jobs: the load average is in the table), Python "
        f"{sys.version.split()[0]}. The {n_tracks} tracks of the open albums "
        f"(``{args.data.name}``), indexed with ``soundtracks-v1``; "
        f"``write_report(store, queries={args.queries}, k={args.k}, random_state=0)``, "
        "15-second excerpts, mono OGG/Vorbis at 16 kHz. The command line does the same: "
        "``sklearn-music report --store dev.db --music-dir "
        f"$SKLEARN_MUSIC_DATA/{args.data.name} --queries "
        f"{args.queries} -k {args.k} --out report/ [--model soundtracks.skops]``. "
        "CPU time counts every thread of the process; on an idle 2-core machine the "
        "wall time is at most about the CPU time. Goals: under a minute, under 50 MB.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - excerpts",
        "     - pairs",
        "     - tracks with an excerpt",
        "     - files",
        "     - folder (MB)",
        "     - wall (s)",
        "     - CPU (s)",
        "     - load average",
    ]
    for name, r in rows:
        lines += [
            f"   * - {name}",
            f"     - {r['items']}",
            f"     - {r['tracks']}",
            f"     - {r['files']}",
            f"     - {r['size']:.1f}",
            f"     - {r['wall']:.0f}",
            f"     - {r['cpu']:.0f}",
            f"     - {r['load']:.1f}",
        ]
    return "\n".join(lines) + "\n"


def main():
    data_home = Path(os.environ.get("SKLEARN_MUSIC_DATA", "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=data_home / "dev")
    parser.add_argument("--store", type=Path, default=None, help="an existing store of --data")
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "report.rst")
    args = parser.parse_args()
    model = pretrained.load("soundtracks-v1")
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store
        if store is None:
            store = Path(tmp) / "dev.db"
            build_store(args.data, store, model)
        n_tracks = len(SimilarityStore(store))
        rows = []
        for name, m in (("middle of the track (no model)", None), ("with the model", model)):
            r = measure(store, args.data, Path(tmp) / "report", m, args.queries, args.k)
            print(name, r, flush=True)
            rows.append((name, r))
    args.out.write_text(table(rows, args, n_tracks))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
