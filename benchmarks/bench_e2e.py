"""Files to vectors: per-stage and total realtime factor, and what each variant costs
in retrieval quality.

Run ``.venv/bin/python benchmarks/bench_e2e.py --data DATA`` (``DATA``: default
``$SKLEARN_MUSIC_DATA``; ``--quick`` for a smoke run). The pretrained model
``sklearn_music.pretrained.load("soundtracks-v1")`` embeds everything.

**Speed** (24 OGG files of ``DATA/wide``, evenly spaced in the sorted listing of
:func:`sklearn_music.datasets.load_audio_folder`; realtime factor = seconds of audio
per wall second, each stage run ``--repeat`` times, best kept, all in one process):

* ``decode``: :func:`soundfile.read` at the native rate, all channels; with 1 process
  and with 2 joblib processes (the reference of the goal: the whole path with 2
  workers at >= 0.8x this);
* ``load_audio``: decode + mono + resampling to 16 kHz, for each resampler;
* ``mel``: ``MelSpectrogramTransformer(res_type=...)`` on the paths (``n_jobs`` 1 and
  2), and the native-rate variant (``_e2e_variants.NativeMel``, no resampling);
* ``embed``: ``ConvEmbedder.transform`` on those mels with 1 and 2 torch threads,
  and the bare torch module on the same patches already cut and stacked (batches
  of 64, ``torch.no_grad``), the reference of the inference overhead;
* ``total``: files to vectors, the mel step with ``n_jobs`` workers then the
  embedder (one torch thread).

**Quality** (the dev set, 502 clips of 30 s of 115 tracks, 8 albums, as in
``bench_real.py``): every variant's log-mel of every clip, embedded by the pretrained
model, scored by album retrieval (P@1, P@10, mAP; cosine; clips of the query's own
track excluded; ``_real_data.retrieval_scores``), and the distance of its features
to the ``soxr_hq`` features (max / mean absolute dB difference, correlation).

The table goes to ``docs/benchmarks/e2e.rst`` (``--out``).
"""

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import numpy as np
from _common import cpu_name
from _e2e_variants import (
    RESAMPLERS,
    VARIANTS,
    dev_mels,
    feature_difference,
    retrieval,
    variant_mel,
)
from _real_data import data_root, plan_clips, prepare

N_FILES = 24


def pick_files(folder, n):
    """``n`` OGG files evenly spaced in the sorted listing of ``folder``."""
    from sklearn_music.datasets import load_audio_folder

    files = sorted(f for f in load_audio_folder(str(folder)).filenames if f.endswith(".ogg"))
    idx = np.linspace(0, len(files) - 1, n).round().astype(int)
    return [files[i] for i in idx]


def _decode(path):
    import soundfile as sf

    return sf.read(path, dtype="float32")[0].shape[0]


def _native_track(path):
    return variant_mel(path, "native")


def _parallel(func, files, n_jobs):
    from joblib import Parallel, delayed

    if n_jobs == 1:
        return [func(f) for f in files]
    # max_nbytes=None as in the package's own parallel runs: joblib keeps its worker
    # processes only between calls with the same settings, and a restart (new
    # imports) inside a timed run would be timed
    return Parallel(n_jobs=n_jobs, max_nbytes=None)(delayed(func)(f) for f in files)


def _bare_module(est, mels):
    """Time-less closure: the bare module on the pre-cut, stacked patches of ``mels``."""
    import torch

    from sklearn_music._patches import _crop, _fixed_offsets

    hop, n = est._hop(), est.patch_frames
    norm = est._normalise(mels)
    stacked = torch.from_numpy(
        np.stack(
            [_crop(s, o, n, est.pad_mode) for s in norm for o in _fixed_offsets(s.shape[1], n, hop)]
        )
    )
    module = est.net_.module_.eval()

    def run():
        with torch.no_grad():
            for s in range(0, len(stacked), 64):
                module(stacked[s : s + 64])

    return run


def _stages(files, est):
    """(stage, variant, n_jobs, function) of every timed run; mels are kept in ``store``."""
    from sklearn_music import MelSpectrogramTransformer, load_audio

    runs = [("decode", "native", j, lambda j=j: _parallel(_decode, files, j)) for j in (1, 2)]
    runs += [
        ("load_audio", r, 1, lambda r=r: [load_audio(f, res_type=r) for f in files])
        for r in RESAMPLERS
    ]
    for r in RESAMPLERS:
        for j in (1, 2):
            mel = MelSpectrogramTransformer(res_type=r, n_jobs=j)
            runs.append(("mel", r, j, lambda m=mel: m.transform(files)))
    for r in ("soxr_hq", "soxr_mq"):
        for j in (1, 2):
            mel = MelSpectrogramTransformer(res_type=r, n_jobs=j)
            runs.append(("total", r, j, lambda m=mel: est.transform(m.transform(files))))
    # the native-rate variant is 3-4x slower: timed once, with 2 workers
    runs.append(("mel", "native", 2, lambda: _parallel(_native_track, files, 2)))
    runs.append(("total", "native", 2, lambda: est.transform(_parallel(_native_track, files, 2))))
    return runs


def speed_rows(files, audio_s, repeat, rounds=None):
    """(stage, variant, n_jobs, wall s, realtime factor) rows, all in this process.

    The runs are interleaved: every round times each run once, the best round counts.
    ``rounds`` (a dict), when given, receives every round's wall time per run as
    ``"stage/variant/n_jobs" -> [s, ...]``, so that ratios can be taken within a round.
    """
    from sklearn_music import MelSpectrogramTransformer
    from sklearn_music.pretrained import load

    est = load("soundtracks-v1")[-1].estimator  # n_jobs=None: one torch thread
    _parallel(_decode, files[:2], 2)  # start the joblib workers before timing
    runs = _stages(files, est)
    best = {}
    for round_ in range(repeat):
        for stage, variant, n_jobs, fn in runs:
            if round_ and variant == "native" and stage != "decode":
                continue  # the native-rate mel is timed once; decoding every round
            t0 = time.perf_counter()
            fn()
            wall = time.perf_counter() - t0
            key = (stage, variant, n_jobs)
            best[key] = min(best.get(key, np.inf), wall)
            if rounds is not None:
                rounds.setdefault(f"{stage}/{variant}/{n_jobs}", []).append(wall)
            print(f"{stage:>10} {variant:>8} n_jobs={n_jobs}: {audio_s / wall:8.0f}x", flush=True)
    rows = [(*k, w, audio_s / w) for k, w in best.items()]
    mels = MelSpectrogramTransformer().transform(files)
    for variant, wall in inference_rows(est, mels, repeat + 1):
        rows.append(("embed", variant, 1, wall, audio_s / wall))
    return rows


def inference_rows(est, mels, repeat):
    """ConvEmbedder.transform (1 and 2 torch threads) and the bare module, interleaved;
    wall seconds (best of ``repeat``), after one warm-up call each."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    bare = _bare_module(est, mels)
    runs = [
        ("transform, 1 thread", lambda: est.set_params(n_jobs=1).transform(mels)),
        ("transform, 2 threads", lambda: est.set_params(n_jobs=2).transform(mels)),
        ("bare module, 1 thread", bare),
    ]
    best = {}
    for _ in range(repeat + 1):
        for name, fn in runs:
            t0 = time.perf_counter()
            fn()
            if _:  # the first round warms up
                best[name] = min(best.get(name, np.inf), time.perf_counter() - t0)
    est.set_params(n_jobs=None)
    torch.set_num_threads(old)
    return list(best.items())


def quality_rows(dev, n_jobs, limit=None, cache=None):
    """Retrieval and feature distance of every variant on the dev clips.

    ``cache``: ``bench_real.py``'s ``mel_dev.npz``, the soxr_hq log-mels of the same
    clips (checked by its key), read instead of computed.
    """
    from sklearn_music.pretrained import load

    plan = plan_clips(dev)
    if limit:
        keep = np.isin(plan["track"], np.unique(plan["track"])[:limit])
        plan = {
            k: (v[keep] if k in ("files", "album", "track", "offset") else v)
            for k, v in plan.items()
        }
    est = load("soundtracks-v1")[-1].estimator
    rows, ref = [], None
    for variant in VARIANTS:
        if variant == "soxr_hq" and cache is not None and not limit and Path(cache).exists():
            mel, secs = prepare(dev, cache, verbose=False)["mel"], float("nan")
        else:
            mel, secs = dev_mels(dev, plan, variant, n_jobs=n_jobs)
        if ref is None:
            ref = mel.astype(np.float64)
        diff = feature_difference(mel, ref)
        scores = retrieval(est, mel, plan)
        rows.append({"variant": variant, "seconds": secs, **diff, **scores})
        print(rows[-1], flush=True)
    return rows, len(plan["files"])


def _list_table(caption, header, rows):
    lines = [f".. list-table:: {caption}", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines += [f"   * - {row[0]}"] + [f"     - {v}" for v in row[1:]]
    return lines + [""]


def speed_table(rows):
    """RST lines of the speed rows, with ratios to the 2-process decode and to the
    bare module."""
    rtf = {(s, v, j): r for s, v, j, _, r in rows}
    decode2 = rtf[("decode", "native", 2)]
    bare = rtf[("embed", "bare module, 1 thread", 1)]
    out = []
    for stage, variant, n_jobs, wall, r in rows:
        ratio = f"{r / decode2:.2f}"
        if stage == "embed":
            ratio += f" (bare module / this: {bare / r:.2f})"
        out.append((stage, variant, n_jobs, f"{wall:.2f}", f"{r:,.0f}", ratio))
    header = ("stage", "variant", "n_jobs", "wall s", "x realtime", "/ decode with 2 processes")
    return _list_table("Files to vectors, per stage (best wall time)", header, out)


def quality_table(rows):
    out = [
        (
            r["variant"],
            f"{r['P@1']:.3f}",
            f"{r['P@10']:.3f}",
            f"{r['mAP']:.3f}",
            f"{r['max_db']:.2f}",
            f"{r['mean_db']:.3f}",
            f"{r['corr']:.5f}",
        )
        for r in rows
    ]
    header = ("variant", "P@1", "P@10", "mAP", "max abs dB", "mean abs dB", "corr")
    return _list_table(
        "Retrieval on the dev clips (pretrained model), features vs soxr_hq", header, out
    )


def summary_lines(res):
    """The goals of issue #17 as ratios measured in this run."""
    rtf = {(r[0], r[1], r[2]): r[4] for r in res["speed"]}
    decode2 = rtf[("decode", "native", 2)]
    bare = rtf[("embed", "bare module, 1 thread", 1)]
    one, two = rtf[("embed", "transform, 1 thread", 1)], rtf[("embed", "transform, 2 threads", 1)]
    totals = {k[1]: v for k, v in rtf.items() if k[0] == "total" and k[2] == 2}
    quality = {q["variant"]: q for q in res["quality"]}
    rounds = res.get("rounds", {})
    per_round = []
    for v in totals:  # decoding and the total timed in the same round, one after the other
        dec, tot = rounds.get("decode/native/2", []), rounds.get(f"total/{v}/2", [])
        if len(dec) == len(tot) > 1:
            ratios = np.sort(np.array(dec) / np.array(tot))
            per_round.append(f"``{v}`` {np.median(ratios):.2f} ({ratios[0]:.2f}–{ratios[-1]:.2f})")
    lines = [
        "Reading the tables (ratios of this run):",
        "",
        "* files to vectors with 2 workers / decoding alone with 2 processes: "
        + ", ".join(f"``{v}`` {r / decode2:.2f}" for v, r in totals.items())
        + " (best of each; goal: 0.8)"
        + (
            "; the same ratio within each round (the two timed one after the other), "
            "median and range over the rounds: " + ", ".join(per_round)
            if per_round
            else ""
        )
        + ";",
        f"* ``ConvEmbedder.transform`` takes {bare / one:.2f}x the time of the bare module "
        f"on pre-cut patches (goal: at most 1.1); 2 torch threads take {one / two:.2f}x "
        "the time of 1 (one thread is the default: the workers of a parallel run get a "
        "core each, and on a busy machine 2 threads were 4x slower than 1);",
    ]
    if "soxr_hq" in quality and "soxr_mq" in quality:
        hq, mq = quality["soxr_hq"], quality["soxr_mq"]
        lines.append(
            f"* ``soxr_mq`` against ``soxr_hq`` on the dev clips: mAP {mq['mAP']:.3f} vs "
            f"{hq['mAP']:.3f}, P@1 {mq['P@1']:.3f} vs {hq['P@1']:.3f}; features within "
            f"{mq['mean_db']:.3f} dB on average (correlation {mq['corr']:.5f})."
        )
    return lines + [""]


def write_page(out, res):
    """Write the RST page from the results of both parts."""
    meta, speed, quality = res["meta"], res["speed"], res["quality"]
    commands = sorted({meta["command"], res.get("quality_command", meta["command"])})
    lines = [
        "Files to vectors",
        "================",
        "",
        "Generated by "
        + " and ".join(f"``{c}``" for c in commands)
        + f" on {meta['date']}; machine: "
        f"{os.cpu_count()} cores ({cpu_name()}), load average {meta['load']:.1f} at the "
        "start (the machine is shared with other jobs), so read the ratios measured side "
        "by side in the same run rather than the absolute numbers. "
        f"Speed: {meta['n_files']} OGG/Vorbis files of the wide collection "
        f"({meta['audio_min']:.0f} min of audio, 44.1 kHz), best of {meta['repeat']}; "
        f"quality: {res['n_clips']} clips of 30 s of the dev collection, embedded by the "
        "pretrained model ``soundtracks-v1``. See the docstring of "
        "``benchmarks/bench_e2e.py`` for what each stage and variant is."
        + (" The speed and quality parts ran as separate processes." if len(commands) > 1 else ""),
        "",
    ]
    lines += summary_lines(res)
    lines += speed_table(speed)
    lines += quality_table(quality)
    Path(out).write_text("\n".join(lines))
    print("\n".join(lines))


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="data root (default $SKLEARN_MUSIC_DATA)")
    parser.add_argument("--quick", action="store_true", help="4 files, 10 dev tracks")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of the speed runs")
    parser.add_argument("--n-jobs", type=int, default=2, help="workers of the dev features")
    parser.add_argument(
        "--part",
        choices=("all", "speed", "quality"),
        default="all",
        help="run one part only; the parts meet in --results, and the page is written "
        "once both are there",
    )
    docs = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
    parser.add_argument("--results", default=str(docs / "e2e_results.json"))
    parser.add_argument("--out", default=str(docs / "e2e.rst"))
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    root = data_root(args.data)
    if root is None:
        parser.error("give --data or set SKLEARN_MUSIC_DATA")
    import json

    import soundfile as sf

    results = Path(args.results)
    res = json.loads(results.read_text()) if results.exists() and args.part != "all" else {}
    command = "python benchmarks/bench_e2e.py " + " ".join(argv or sys.argv[1:])
    if args.part in ("all", "speed"):
        load = os.getloadavg()[0]
        files = pick_files(root / "wide", 4 if args.quick else N_FILES)
        audio_s = sum(sf.info(f).duration for f in files)
        repeat = 1 if args.quick else args.repeat
        res["rounds"] = {}
        res["speed"] = [list(r) for r in speed_rows(files, audio_s, repeat, res["rounds"])]
        res["meta"] = {
            "command": command,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load": load,
            "n_files": len(files),
            "audio_min": audio_s / 60,
            "repeat": repeat,
        }
    if args.part in ("all", "quality"):
        limit = 10 if args.quick else None
        cache = root / "shared_feats" / "mel_dev.npz"
        res["quality"], res["n_clips"] = quality_rows(root / "dev", args.n_jobs, limit, cache)
        res["quality_command"] = command
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(res, indent=1))
    if "speed" in res and "quality" in res:
        write_page(args.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
