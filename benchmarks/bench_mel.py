"""Benchmark MelSpectrogramTransformer against librosa, side by side in one process.

Times the log-mel spectrogram of synthetic 30-s clips at 16 kHz (n_fft=1024,
hop_length=512, n_mels=128, dB scale) computed by

- librosa: ``librosa.power_to_db(librosa.feature.melspectrogram(...), ref=1.0,
  amin=1e-10, top_db=None)`` per clip, in a loop (n_jobs=1) or with
  ``joblib.Parallel(n_jobs=2)`` over clips;
- ``MelSpectrogramTransformer(n_jobs=1 or 2).transform(X)``,

and reports the time per clip, the speed-up and the largest elementwise relative
error of the mel power (``log=None``) and the largest dB difference. BLAS runs one
thread per process so that ``n_jobs`` measures parallelism over clips.

Then it checks that :func:`sklearn_music.datasets.load_audio_folder` and the
transformer process every track of a real collection without error (``--real DIR``;
by default $SKLEARN_MUSIC_DATA/soundtracks when it exists). Make that collection with::

    python ../shared/datasets/debian_soundtracks.py DIR

Usage::

    python benchmarks/bench_mel.py [--quick] [--real DIR | --no-real]

The table is printed in reStructuredText and written to docs/benchmarks/mel.rst.
"""

import argparse
import datetime
import functools
import gc
import glob
import os
import platform
import sys
import tempfile
import time

import joblib
import librosa
import numpy as np
from _common import cpu_name
from threadpoolctl import threadpool_limits

from sklearn_music import MelSpectrogramTransformer
from sklearn_music.io import AudioLoadError

SR = 16000
PARAMS = {"n_fft": 1024, "hop_length": 512, "n_mels": 128}
DEFAULT_REAL = os.path.join(os.environ.get("SKLEARN_MUSIC_DATA", "data"), "soundtracks")
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, os.pardir, "docs", "benchmarks", "mel.rst")


def synth_clips(n_clips, seconds, random_state=0, sr=SR):
    """Chords with vibrato, drum-like noise bursts and a noise floor."""
    rng = np.random.default_rng(random_state)
    t = np.arange(int(seconds * sr)) / sr
    clips = np.empty((n_clips, t.size), dtype=np.float32)
    for i in range(n_clips):
        y = np.zeros_like(t)
        for f0 in rng.uniform(80, 1000, size=3):
            y += 0.2 * np.sin(
                2 * np.pi * f0 * t + rng.uniform(0, 3) * np.sin(2 * np.pi * rng.uniform(2, 6) * t)
            )
        beat = rng.uniform(1.5, 3.0)
        y += 0.3 * rng.standard_normal(t.size) * np.exp(-20 * ((t * beat) % 1.0))
        y += 0.01 * rng.standard_normal(t.size)
        clips[i] = y / np.abs(y).max()
    return clips


def librosa_one(y):
    S = librosa.feature.melspectrogram(y=y, sr=SR, center=True, pad_mode="constant", **PARAMS)
    return librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None)


def librosa_file(path):
    y, _ = librosa.load(path, sr=SR, mono=True, res_type="soxr_hq")
    return librosa_one(y)


def librosa_all(X, n_jobs):
    one = librosa_file if isinstance(X[0], str) else librosa_one
    if n_jobs == 1:
        return [one(y) for y in X]
    return joblib.Parallel(n_jobs=n_jobs)(joblib.delayed(one)(y) for y in X)


def write_ogg_clips(folder, n_clips, seconds, sr=44100):
    """The clips as stereo OGG/Vorbis files at 44.1 kHz, as real music comes."""
    import soundfile as sf

    paths = []
    for i, y in enumerate(synth_clips(n_clips, seconds, random_state=1, sr=sr)):
        path = os.path.join(folder, f"clip{i}.ogg")
        sf.write(path, np.stack([y, 0.8 * y], axis=1), sr)
        paths.append(path)
    return paths


def time_it(func):
    t0 = time.perf_counter()
    func()
    return time.perf_counter() - t0


def accuracy(X):
    """Largest elementwise relative error of the power, largest dB difference."""
    ours = MelSpectrogramTransformer(sr=SR, log=None, **PARAMS).transform(X)
    rel, db = 0.0, 0.0
    for S, y in zip(ours, X):
        ref = librosa.feature.melspectrogram(y=y, sr=SR, pad_mode="constant", **PARAMS)
        nz = ref != 0
        if not np.array_equal(S == 0, ref == 0):
            raise AssertionError("the zeros of the two spectrograms differ")
        rel = max(rel, float(np.max(np.abs(S[nz] - ref[nz]) / ref[nz])))
    ours_db = MelSpectrogramTransformer(sr=SR, **PARAMS).transform(X)
    for S, y in zip(ours_db, X):
        db = max(db, float(np.max(np.abs(S - librosa_one(y)))))
    return rel, db


def speed(X, repeats, what):
    rows = []
    for n_jobs in (1, 2):
        mel = MelSpectrogramTransformer(sr=SR, n_jobs=n_jobs, **PARAMS)
        # warm up: imports, FFT plans and (for n_jobs=2) the worker processes
        mel.transform(X[:2])
        librosa_all(X[:2], n_jobs)
        gc.collect()
        t_lib, t_ours = [], []
        for r in range(repeats):  # interleaved, taking turns to go first
            runs = [
                (t_lib, functools.partial(librosa_all, X, n_jobs)),
                (t_ours, functools.partial(mel.transform, X)),
            ]
            for times, func in runs[:: 1 if r % 2 else -1]:
                times.append(time_it(func))
        # the fastest run is the least disturbed by other jobs on the machine
        lib = min(t_lib) / len(X)
        ours = min(t_ours) / len(X)
        rows.append((what, n_jobs, lib, ours))
        print(
            f"{what}, n_jobs={n_jobs}: librosa {1e3 * lib:.1f} ms/clip, "
            f"transformer {1e3 * ours:.1f} ms/clip",
            file=sys.stderr,
        )
    return rows


def real_check(folder, duration, n_jobs, batch):
    """Every track of the real collection through load_audio_folder + transformer."""
    try:
        from sklearn_music.datasets import load_audio_folder
    except ImportError:  # not written yet: the files themselves
        files = sorted(glob.glob(os.path.join(folder, "**", "*.ogg"), recursive=True))
        labels = sorted({os.path.basename(os.path.dirname(f)) for f in files})
        how = "glob **/*.ogg"
    else:
        bunch = load_audio_folder(folder)
        files, labels = list(bunch.filenames), list(bunch.target_names)
        how = "load_audio_folder"
    mel = MelSpectrogramTransformer(sr=SR, n_jobs=n_jobs, duration=duration, **PARAMS)
    ok, failed, frames = 0, [], 0
    t0 = time.perf_counter()
    for start in range(0, len(files), batch):
        chunk = files[start : start + batch]
        try:
            out = mel.transform(chunk)
            done = list(zip(chunk, out))
        except AudioLoadError:  # find which ones, one by one
            done = []
            for f in chunk:
                try:
                    done.append((f, mel.transform([f])[0]))
                except AudioLoadError as exc:
                    failed.append(f"{f}: {exc}")
        for f, S in done:
            if S.dtype != np.float32 or not np.isfinite(S).all():
                failed.append(f"{f}: output is not finite float32")
                continue
            ok += 1
            frames += S.shape[1]
        done_so_far = min(start + batch, len(files))
        print(f"  {done_so_far}/{len(files)} tracks", file=sys.stderr)
    wall = time.perf_counter() - t0
    hours = frames * PARAMS["hop_length"] / SR / 3600
    return {
        "folder": folder,
        "how": how,
        "labels": len(labels),
        "files": len(files),
        "ok": ok,
        "failed": failed,
        "hours": hours,
        "wall": wall,
        "duration": duration,
    }


def render(args, n_clips, rows, rel, db, real):
    quick = " --quick" if args.quick else ""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "MelSpectrogramTransformer vs librosa",
        "====================================",
        "",
        f"Generated by ``python benchmarks/bench_mel.py{quick}``"
        f" on {now}; machine: {os.cpu_count()} cores ({cpu_name()}), Python "
        f"{platform.python_version()}, numpy {np.__version__}, librosa "
        f"{librosa.__version__}. {n_clips} synthetic clips of {args.seconds:g} s at "
        f"{SR} Hz; n_fft={PARAMS['n_fft']}, hop_length={PARAMS['hop_length']}, "
        f"n_mels={PARAMS['n_mels']}, dB scale (``power_to_db(ref=1.0, amin=1e-10, "
        f"top_db=None)``); best of {args.repeats} interleaved runs; one BLAS thread "
        "per process. *arrays*: the clips as a 2-D float32 array; *OGG files*: the "
        "same number of other clips as stereo OGG/Vorbis files at 44.1 kHz, read, "
        "mixed to mono and resampled (``librosa.load(path, sr=16000)`` against "
        "the transformer given the paths). The machine was shared with other jobs, "
        "so the ratios are more telling than the absolute times.",
        "",
        ".. list-table:: Time per clip",
        "   :header-rows: 1",
        "",
        "   * - input",
        "     - n_jobs",
        "     - librosa (ms per clip)",
        "     - MelSpectrogramTransformer (ms per clip)",
        "     - speed-up (librosa / transformer)",
    ]
    for what, n_jobs, lib, ours in rows:
        lines += [
            f"   * - {what}",
            f"     - {n_jobs}",
            f"     - {1e3 * lib:.1f}",
            f"     - {1e3 * ours:.1f}",
            f"     - {lib / ours:.2f}",
        ]
    lines += [
        "",
        f"Accuracy against ``librosa.feature.melspectrogram``: largest elementwise "
        f"relative error of the mel power {rel:.2e} (required: at most 1e-5); largest "
        f"difference on the dB scale {db:.2e} dB.",
        "",
    ]
    if real is not None:
        dur = "whole tracks"
        if real["duration"] is not None:
            dur = f"first {real['duration']:g} s"
        lines += [
            "Real collection",
            "---------------",
            "",
            f"Every track of ``$SKLEARN_MUSIC_DATA/{os.path.basename(real['folder'])}`` "
            f"(listed with {real['how']}; "
            f"{dur}; n_jobs={args.n_jobs_real}) through the transformer:",
            "",
            ".. list-table::",
            "   :header-rows: 1",
            "",
            "   * - labels",
            "     - files",
            "     - processed",
            "     - failed",
            "     - audio (hours)",
            "     - wall time (s)",
            f"   * - {real['labels']}",
            f"     - {real['files']}",
            f"     - {real['ok']}",
            f"     - {len(real['failed'])}",
            f"     - {real['hours']:.2f}",
            f"     - {real['wall']:.0f}",
            "",
        ]
        for msg in real["failed"]:
            lines.append(f"- failed: ``{msg}``")
        if real["failed"]:
            lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="4 clips, 2 runs, first 10 s of real tracks"
    )
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=7)
    real = parser.add_mutually_exclusive_group()
    real.add_argument(
        "--real",
        default=DEFAULT_REAL if os.path.isdir(DEFAULT_REAL) else None,
        help=f"folder-per-label collection of real music (default {DEFAULT_REAL} when it exists)",
    )
    real.add_argument("--no-real", action="store_true", help="skip the real check")
    parser.add_argument(
        "--real-duration",
        type=float,
        default=None,
        help="seconds per real track (default: whole tracks)",
    )
    parser.add_argument("--n-jobs-real", type=int, default=2)
    parser.add_argument("--output", default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.clips, args.repeats = 4, 2
        if args.real_duration is None:
            args.real_duration = 10.0

    X = synth_clips(args.clips, args.seconds)
    with threadpool_limits(1), tempfile.TemporaryDirectory() as tmp:
        rel, db = accuracy(X)
        rows = speed(X, args.repeats, "arrays")
        paths = write_ogg_clips(tmp, args.clips, args.seconds)
        rows += speed(paths, args.repeats, "OGG files")
    real_result = None
    if args.real and not args.no_real:
        if not os.path.isdir(args.real):
            parser.error(
                f"--real {args.real!r} is not a folder; make it with "
                "python ../shared/datasets/debian_soundtracks.py DIR"
            )
        real_result = real_check(args.real, args.real_duration, args.n_jobs_real, batch=8)
    text = render(args, args.clips, rows, rel, db, real_result)
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        f.write(text)
    print(f"wrote {os.path.abspath(args.output)}", file=sys.stderr)
    if real_result is not None and real_result["failed"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
