"""Retrieval quality on real music: in-domain and transfer to albums never heard.

Run ``.venv/bin/python benchmarks/bench_real.py --data DATA [--protocol in-domain|transfer]``
(``--quick`` for a smoke run). ``DATA`` (default: the environment variable
``SKLEARN_MUSIC_DATA``) holds the two Debian game-soundtrack collections,
``DATA/dev/<album>/<track>`` (8 albums, 119 tracks) and ``DATA/wide/<album>/<track>``
(89 other albums, 580 tracks); make them once with::

    python ../shared/datasets/debian_soundtracks.py DATA/dev --set dev
    python ../shared/datasets/debian_soundtracks.py DATA/wide --set wide

**Clips.** Every track is listed with :func:`sklearn_music.datasets.load_audio_folder`
(album = label). A track shorter than 30 s is skipped (4 of the 119 dev files); a track
of ``L`` seconds gives ``n = min(6, floor(L / 30))`` clips of 30 s: the track is cut
into ``n`` equal segments and the 30 s at the centre of each segment are taken, so the
clips never overlap and are spread over the whole track (502 dev clips, 2088 wide
clips). Each clip is read with :func:`sklearn_music.load_audio` (mono, 16 kHz).

**Features.** Every clip goes through the first step of the default pipeline,
``MelSpectrogramTransformer()`` (128 log-mel bands, 938 frames), and through the
baseline ``MFCCStatistics()`` (60 numbers). Both are stateless, so they are computed
once and cached in ``DATA/shared_feats/mel_<set>.npz`` (``--feats``; its layout is in
``_real_data.py``). The musicnn rows read ``DATA/shared_feats/musicnn_<set>.npz``,
written by ``_musicnn_features.py`` in musicnn's own environment (this script never
imports TensorFlow; without the file those rows are skipped with a message).

**Rows.** ``_real_rows.default_rows`` lists the representations, one line each
(``--row NAME=module:function[:fit]`` adds one from the command line): MFCC
statistics, mean/std of the log-mel, musicnn's pooled layers (all standardised with
the training pool's statistics), ``ConvEmbedder`` from random weights (``init=None``,
a 64-d embedding: the defaults before ``init="auto"``) trained on the training pool's
album labels, the same trained without labels (``fit(X)``), the pretrained model, the
default ``ConvEmbedder`` (``init="auto"``: from soundtracks-v1) trained without labels,
and fine-tuning from the pretrained model on the album labels
(``ConvEmbedder(init="soundtracks-v1")``, which is what the default ``init="auto"``
trains on the default log-mel) beside the same architecture from random weights.
Rows that train run with ``random_state`` 0..SEEDS-1 and report the mean ± standard
deviation over the seeds. A row whose model starts from soundtracks-v1 is skipped,
with a message, where the test set is ``wide``: soundtracks-v1 was trained on that
audio (``--direction to-dev`` runs wide → dev alone).

**In-domain protocol** (dev set). ``GroupKFold(5)`` with the track as group. In each
fold the rows are fitted on the training clips, and every held-out clip queries all
the other held-out clips by cosine similarity, **clips of its own track excluded**. A
clip of the same album (another track) is relevant. Precision@1, precision@10 and
average precision (over the whole ranking) are averaged over the queries of all
folds; queries with no relevant clip (an album with a single track in the fold) are
left out and counted.

**Transfer protocol.** Fit on one whole collection, embed the other, which the model
never heard, and score album retrieval there as above (each clip queries all the
other clips of the test collection, own track excluded): *wide → dev* (train on the
89 wide albums, test on all clips of the 8 dev albums) and *dev → wide* (train on
dev, test on the wide albums with at least 4 tracks: 42 albums, 495 tracks, one clip
per track, its middle one, which keeps this direction cheap and weighs every track
once). musicnn rows fit their scaler on the training clips that have musicnn
features (the wide file may be partial while ``_musicnn_features.py`` runs; it
processes the middle clip of every track first).

Results go to ``--results`` (JSON, one entry per protocol) and the page
``docs/benchmarks/real.rst`` is rewritten from it, with the research logs of
``_real_log.py``.
"""

import argparse
import datetime
import json
import os
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from _common import cpu_name
from _real_data import chance_ap, data_root, pool, prepare, retrieval_scores, summary
from _real_rows import SkipRow, default_rows, load_musicnn, row_from_spec

N_SPLITS = 5
MIN_TRACKS = 4
METRICS = ("P@1", "P@10", "mAP")


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------
def load_set(root, feats, name):
    """The clips of set ``name`` with their cached features and musicnn layers."""
    data = prepare(root / name, feats / f"mel_{name}.npz")
    data["musicnn"] = load_musicnn(feats / f"musicnn_{name}.npz", data["files"], data["offset"])
    data["set"] = name
    return data


def subset(data, idx=None):
    """The clips ``idx`` of a set (``None``: all, without a copy) as a pool."""
    take = (lambda v: v) if idx is None else (lambda v: v[idx])
    out = {"set": data["set"]}
    for k in ("mel", "mfcc", "album", "track"):
        out[k] = take(data[k])
    m = data["musicnn"]
    out["musicnn"] = None if m is None else {k: take(v) for k, v in m.items()}
    return out


def middle_clips(data):
    """The middle clip of every track (the clip ``n // 2`` of its ``n`` clips)."""
    track = data["track"]
    return np.array([np.flatnonzero(track == t)[(track == t).sum() // 2] for t in np.unique(track)])


def min_tracks_mask(data, min_tracks=MIN_TRACKS):
    """Clips of the albums that have at least ``min_tracks`` tracks."""
    n_tracks = {
        a: len(np.unique(data["track"][data["album"] == a])) for a in np.unique(data["album"])
    }
    return np.array([n_tracks[a] >= min_tracks for a in data["album"]])


# --------------------------------------------------------------------------------------
# Protocols
# --------------------------------------------------------------------------------------
def run_row(row, splits, seeds):
    """Scores of one row over ``splits`` [(train pool, test pool)], once per seed.

    Returns (per-seed summaries, mean seconds per seed, pooled scores of seed 0).
    """
    per_seed, seconds, first = [], [], None
    for seed in seeds if row.seeded else seeds[:1]:
        results, t0 = [], time.perf_counter()
        for train, test in splits:
            emb = row.embed(train, test, seed)
            results.append(retrieval_scores(emb, test["album"], test["track"]))
        seconds.append(time.perf_counter() - t0)
        pooled = pool(results)
        first = first or pooled
        per_seed.append(summary(pooled))
        print(
            f"  {row.name} [seed {seed}]: "
            + ", ".join(f"{k} {v:.3f}" for k, v in per_seed[-1].items())
            + f" ({seconds[-1]:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    return per_seed, float(np.mean(seconds)), first


def score_table(title, rows, splits, seeds):
    """Run every row on ``splits``; a dict ready for the JSON results."""
    table = {"title": title, "rows": [], "skipped": []}
    chance = [chance_ap(test["album"], test["track"]) for _, test in splits]
    for row in rows:
        try:
            per_seed, secs, first = run_row(row, splits, seeds)
        except (SkipRow, ImportError, NotImplementedError) as exc:
            print(f"  {row.name}: skipped ({exc})", file=sys.stderr, flush=True)
            table["skipped"].append([row.name, str(exc)])
            continue
        entry = {"name": row.name, "n_seeds": len(per_seed), "seconds": secs}
        for m in METRICS:
            vals = [s[m] for s in per_seed]
            entry[m] = [float(np.mean(vals)), float(np.std(vals))]
        table["rows"].append(entry)
        table["n_queries"] = int(len(first["ap"]))
        table["n_left_out"] = int(first["n_skipped"])
        table["chance"] = {
            "P@1": float(first["chance_p"].mean()),
            "P@10": float(first["chance_p"].mean()),
            "mAP": float(np.mean(np.concatenate(chance))),
        }
    n_clips = sum(len(test["album"]) for _, test in splits)
    table["n_test_clips"] = int(n_clips)
    return table


# a line of run_row: "  NAME [seed S]: P@1 x, P@10 y, mAP z (T s)"
_LOG_LINE = re.compile(
    r"^  (?P<name>.+) \[seed (?P<seed>\d+)\]: P@1 (?P<p1>[\d.]+), "
    r"P@10 (?P<p10>[\d.]+), mAP (?P<ap>[\d.]+) \((?P<secs>\d+) s\)$"
)


def rows_from_log(text):
    """The finished rows of a run stopped before it wrote its results, from its stderr.

    ``run_row`` prints every seed's scores (3 decimals) as it finishes them; a row is
    taken with the seeds it finished.
    """
    per_row = {}
    for line in text.splitlines():
        m = _LOG_LINE.match(line)
        if m:
            per_row.setdefault(m["name"], []).append(m)
    rows = []
    for name, found in per_row.items():
        entry = {"name": name, "n_seeds": len(found)}
        entry["seconds"] = float(np.mean([float(m["secs"]) for m in found]))
        for metric, key in zip(METRICS, ("p1", "p10", "ap")):
            vals = [float(m[key]) for m in found]
            entry[metric] = [float(np.mean(vals)), float(np.std(vals))]
        rows.append(entry)
    return rows


def in_domain_title(name, folds=None):
    return f"In-domain: {name} set, GroupKFold({N_SPLITS}) by track" + (
        f", first {folds} folds" if folds else ""
    )


def in_domain(dev, rows, seeds, *, folds=None):
    """The 5-fold in-domain table on one set."""
    from sklearn.model_selection import GroupKFold

    album, track = dev["album"], dev["track"]
    idx = list(GroupKFold(N_SPLITS).split(album, album, groups=track))[:folds]
    splits = [(subset(dev, tr), subset(dev, te)) for tr, te in idx]
    return [score_table(in_domain_title(dev["set"], folds), rows, splits, seeds)]


def transfer(dev, wide, rows, seeds, directions=("to-dev", "to-wide")):
    """The transfer tables: wide → dev (``"to-dev"``) and dev → wide (``"to-wide"``,
    albums with at least MIN_TRACKS tracks), those of ``directions``."""
    mid = middle_clips(wide)
    wide_test = mid[min_tracks_mask(wide)[mid]]
    n_alb = len(np.unique(wide["album"][wide_test]))
    plans = {
        "to-dev": (
            f"Transfer: trained on {wide['set']} ({len(wide['target_names'])} albums), "
            f"tested on {dev['set']} ({len(dev['target_names'])} albums, never heard)",
            lambda: [(subset(wide), subset(dev))],
        ),
        "to-wide": (
            f"Transfer: trained on {dev['set']} ({len(dev['target_names'])} albums), "
            f"tested on {wide['set']} ({n_alb} albums with ≥ {MIN_TRACKS} tracks, "
            "middle clip of each track, never heard)",
            lambda: [(subset(dev), subset(wide, wide_test))],
        ),
    }
    return [
        score_table(title, rows, splits(), seeds)
        for key, (title, splits) in plans.items()
        if key in directions
    ]


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------
def _cell(v, n_seeds):
    return f"{v[0]:.3f} ± {v[1]:.3f}" if n_seeds > 1 else f"{v[0]:.3f}"


def rst_table(table):
    """A results table as a reStructuredText list-table."""
    lines = [
        f".. list-table:: {table['title']}",
        "   :header-rows: 1",
        "",
        "   * - representation",
        "     - P@1",
        "     - P@10",
        "     - mAP",
        "     - fit + embed time (per seed)",
    ]
    if "chance" in table:
        c = table["chance"]
        lines += ["   * - chance (random ranking)"]
        lines += [f"     - {c[m]:.3f}" for m in METRICS] + ["     - "]
    for r in table["rows"]:
        seeds = f", {r['n_seeds']} seeds" if r["n_seeds"] > 1 else ""
        lines += [f"   * - {r['name']}{seeds}"]
        lines += [f"     - {_cell(r[m], r['n_seeds'])}" for m in METRICS]
        lines += [f"     - {r['seconds']:.0f} s"]
    text = "\n".join(lines)
    if "n_queries" in table:
        text += (
            f"\n\n{table['n_test_clips']} test clips; {table['n_queries']} queries scored, "
            f"{table['n_left_out']} left out (no other track of their album in the pool)."
        )
    for name, msg in table["skipped"]:
        text += f"\n\n*{name}*: not run ({msg})."
    return text


def merge(old, tables, meta):
    """Results of a protocol: ``tables`` replace the rows of the same name in ``old``.

    Rows of ``old`` that were not run again (``--rows``) are kept, in their order, with
    the command that made them, and so are the tables of ``old`` that were not run
    again (``--direction``); a new table title is added after the old tables.
    """
    for t in tables:
        for r in t["rows"]:
            r |= meta
    if not old:
        return {"tables": tables}
    merged = list(old["tables"])
    titles = [o["title"] for o in merged]
    for t in tables:
        if t["title"] not in titles:
            merged.append(t)
            titles.append(t["title"])
            continue
        i = titles.index(t["title"])
        prev = merged[i]
        new = {r["name"]: r for r in t["rows"]}
        rows = [new.pop(r["name"], r) for r in prev["rows"]] + list(new.values())
        run = {r["name"] for r in t["rows"]} | {n for n, _ in t["skipped"]}
        skipped = [s for s in prev["skipped"] if s[0] not in run] + t["skipped"]
        skipped = [s for s in skipped if s[0] not in {r["name"] for r in rows}]
        merged[i] = prev | {k: v for k, v in t.items() if k not in ("rows", "skipped")}
        merged[i] |= {"rows": rows, "skipped": skipped}
    return {"tables": merged}


def _section(res, heading):
    tables = "\n\n".join(rst_table(t) for t in res["tables"])
    runs = {}
    for t in res["tables"]:
        for r in t["rows"]:
            runs.setdefault((r["command"], r["when"], r["machine"]), None)
    made = "\n".join(f"- ``{c}`` on {w}; machine: {m}." for c, w, m in runs)
    return f"""{heading}
{"-" * len(heading)}

Made by:

{made}

{tables}
"""


def write_page(results, out):
    from _real_log import FINDINGS, RESEARCH_LOG, TRANSFER_FINDINGS, TRANSFER_LOG

    title = "Retrieval on real music (Debian game soundtracks)"
    parts = [f"{title}\n{'=' * len(title)}\n", PAGE_INTRO]
    for key, heading in (("in-domain", "In-domain"), ("transfer", "Transfer to unheard albums")):
        if key in results:
            parts.append(_section(results[key], heading))
    parts += [
        "Research log: transfer\n----------------------\n",
        TRANSFER_FINDINGS + "\n",
        log_table(TRANSFER_LOG, "What we tried for transfer") + "\n",
        "Research log: in-domain\n-----------------------\n",
        FINDINGS + "\n",
        log_table(RESEARCH_LOG, "What we tried in-domain (5-fold protocol unless noted)") + "\n",
    ]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(parts))


def log_table(entries, caption):
    if not entries:
        return "(no experiments recorded yet)"
    lines = [
        f".. list-table:: {caption}",
        "   :header-rows: 1",
        "   :widths: 40 10 10 10 30",
        "",
        "   * - change",
        "     - P@1",
        "     - P@10",
        "     - mAP",
        "     - what it did",
    ]
    for change, p1, p10, m, note in entries:
        lines += [f"   * - {change}", f"     - {p1}", f"     - {p10}", f"     - {m}"]
        lines += [f"     - {note}"]
    return "\n".join(lines)


PAGE_INTRO = """\
Album retrieval on the Debian game-soundtrack collections: 30-s clips, label = album
(package), cosine similarity, the clips of the query's own track excluded from its
ranking, a clip of another track of the same album relevant. *In-domain*: the dev set
(8 albums), ``GroupKFold(5)`` by track, held-out clips query the other held-out clips.
*Transfer*: fitted on one collection, tested on the other, whose albums the model
never heard; each test clip queries the whole test collection (dev: all 502 clips;
wide: the middle clip of each track of the albums with at least 4 tracks). The clips, features
and rows are described in the docstring of ``benchmarks/bench_real.py``. The
``ConvEmbedder`` rows are trained on the cached log-mel of the default
``MelSpectrogramTransformer()``, so a row is
``Pipeline(MelSpectrogramTransformer(), ConvEmbedder(..., random_state=seed))``. The
*scratch* and *self-supervised* rows are ``ConvEmbedder(init=None, embedding_dim=64)``:
random initial weights and a 64-d embedding, the defaults until ``init="auto"``. musicnn
(``MSD_musicnn``, Pons & Serra 2019, trained on the Million Song Dataset) is run in
its own environment by ``benchmarks/_musicnn_features.py``: float32 log-mel, 3-s
patches, each layer averaged over the 10 patches of a clip. The *fine-tuned* rows are
``ConvEmbedder(init="soundtracks-v1", random_state=seed)`` trained on the album labels
like the scratch row: the pretrained architecture (a 128-d embedding), its trunk
starting from the shipped weights, a new album head. The first of them is what the
default ``ConvEmbedder(random_state=seed)`` (``init="auto"``) trains on this log-mel;
the *ConvEmbedder default ... self-supervised* row is the same default fitted without
labels. The *128-d random init* row is the pretrained architecture from random
weights. Rows that start from soundtracks-v1 are not run in dev → wide: the model was
trained on the wide audio. The time column is fitting
and embedding (features cached), per seed, summed over folds, on a machine shared with
other jobs: compare times within one run only.
"""


def _rows_wanted(rows, spec):
    if not spec:
        return rows
    keys = [s.strip().lower() for s in spec.split(",")]
    return [r for r in rows if any(k in r.name.lower() for k in keys)]


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="data root (default $SKLEARN_MUSIC_DATA)")
    parser.add_argument("--feats", default=None, help="feature cache (default DATA/shared_feats)")
    parser.add_argument("--dev-set", default="dev", help="in-domain set (default dev)")
    parser.add_argument("--wide-set", default="wide", help="second set (default wide)")
    parser.add_argument("--protocol", choices=["in-domain", "transfer", "both"], default="both")
    parser.add_argument(
        "--direction",
        choices=["both", "to-dev", "to-wide"],
        default="both",
        help="transfer direction(s): wide → dev, dev → wide or both (default); a model "
        "that starts from soundtracks-v1 (trained on the wide audio) belongs in to-dev only",
    )
    parser.add_argument("--rows", default="", help="comma-separated substrings of row names")
    parser.add_argument(
        "--row",
        action="append",
        default=[],
        metavar="NAME=module:function[:fit]",
        help="an extra row: function(seed) returns an estimator on the log-mel; fit is "
        "labels (default), unlabeled or none (already fitted); repeatable",
    )
    parser.add_argument("--quick", action="store_true", help="2 folds, 3-epoch CNN, 1 seed")
    parser.add_argument("--n-jobs", type=int, default=2, help="torch threads")
    parser.add_argument("--params", default="{}", help="JSON ConvEmbedder overrides")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the trained rows")
    parser.add_argument(
        "--results", default="docs/benchmarks/real_results.json", help="JSON results ('' none)"
    )
    parser.add_argument("--out", default="docs/benchmarks/real.rst", help="page ('' for none)")
    parser.add_argument(
        "--from-log",
        nargs=2,
        metavar=("LOG", "COMMAND"),
        default=None,
        help="add the finished rows of an in-domain run that was stopped before writing "
        "its results: its stderr LOG and the COMMAND that ran it",
    )
    return parser


def _meta(command, when=None):
    when = datetime.datetime.now(datetime.timezone.utc) if when is None else when
    return {
        "command": command,
        "when": when.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, torch threads: as in the command",
    }


def _from_log(args):
    """``--from-log``: the rows of a stopped in-domain run into the results and page."""
    log, command = args.from_log
    rows = rows_from_log(Path(log).read_text())
    if not rows:
        print(f"{log}: no finished row", file=sys.stderr)
        return 1
    stamp = datetime.datetime.fromtimestamp(Path(log).stat().st_mtime, datetime.timezone.utc)
    meta = _meta(f"{command} (stopped before the end; its finished rows, from its log)", stamp)
    table = {"title": in_domain_title(args.dev_set), "rows": rows, "skipped": []}
    results = json.loads(Path(args.results).read_text()) if Path(args.results).exists() else {}
    results["in-domain"] = merge(results.get("in-domain"), [table], meta)
    Path(args.results).write_text(json.dumps(results, indent=1) + "\n")
    if args.out:
        write_page(results, args.out)
    print("\n".join(f"{r['name']}: {r['n_seeds']} seed(s)" for r in rows))
    return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.from_log:
        return _from_log(args)
    root = data_root(args.data)
    if root is None or not (root / args.dev_set).is_dir():
        print(
            "Give the data root with --data DATA or SKLEARN_MUSIC_DATA=DATA; it must hold "
            f"DATA/{args.dev_set} and DATA/{args.wide_set}. Make them (about 5 GB of Debian "
            "packages) with:\n\n"
            "    python ../shared/datasets/debian_soundtracks.py DATA/dev --set dev\n"
            "    python ../shared/datasets/debian_soundtracks.py DATA/wide --set wide\n",
            file=sys.stderr,
        )
        return 2
    feats = Path(args.feats) if args.feats else root / "shared_feats"
    params = json.loads(args.params)
    if args.quick:
        params.setdefault("max_epochs", 3)
    seeds = list(range(1 if args.quick else args.seeds))
    rows = _rows_wanted(default_rows(params, n_jobs=args.n_jobs), args.rows)
    rows += [row_from_spec(spec) for spec in args.row]
    t0 = time.perf_counter()
    dev = load_set(root, feats, args.dev_set)
    print(f"{args.dev_set}: {len(dev['album'])} clips ({time.perf_counter() - t0:.0f} s)")
    meta = {
        "command": ("" if args.data else "SKLEARN_MUSIC_DATA=DATA ")
        + "benchmarks/bench_real.py "
        + shlex.join(argv or sys.argv[1:]),
        "when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{cpu_name()}, {os.cpu_count()} cores, torch threads: {args.n_jobs}",
    }
    new = {}
    if args.protocol in ("in-domain", "both"):
        new["in-domain"] = in_domain(dev, rows, seeds, folds=2 if args.quick else None)
        print("\n\n".join(rst_table(t) for t in new["in-domain"]))
    if args.protocol in ("transfer", "both"):
        wide = load_set(root, feats, args.wide_set)
        directions = ("to-dev", "to-wide") if args.direction == "both" else (args.direction,)
        new["transfer"] = transfer(dev, wide, rows, seeds, directions)
        print("\n\n".join(rst_table(t) for t in new["transfer"]))
    results = {}  # read now, not at the start: another run may have written meanwhile
    if args.results and Path(args.results).exists():
        results = json.loads(Path(args.results).read_text())
    for protocol, tables in new.items():
        results[protocol] = merge(results.get(protocol), tables, meta)
    if args.results:
        Path(args.results).write_text(json.dumps(results, indent=1) + "\n")
    if args.out:
        write_page(results, args.out)
        print(f"written {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
