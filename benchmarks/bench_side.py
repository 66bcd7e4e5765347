"""Side information in the network: audio only vs audio + lyrics / metadata.

Run ``PYTHONPATH=. python benchmarks/bench_side.py`` (``--quick`` for a smoke run).

On :func:`~sklearn_music.datasets.make_tracks` data with ``lyrics=True`` (lyrics
whose made-up words depend on the genre and on the artist, noise words, 20 %
instrumental tracks; a release year scattered around an era per artist), every
seed draws a collection, holds half of the tracks of every artist out (held out by
track), and trains :class:`~sklearn_music.MultimodalEmbedder` on the other half
to predict the artist, with the same settings and seed for every row:

- **audio only**: no side input;
- **audio + lyrics**: ``text_column="lyrics"``;
- **audio + metadata**: ``categorical_columns=["genre"]``, ``numeric_columns=["year"]``;
- **all**: lyrics and metadata;
- **all, side inputs removed**: the "all" model, with only the spectrogram column
  given to ``transform`` (a new track without lyrics or metadata).

The held-out tracks are embedded and every one queries the others (leave one out):
a retrieved track is relevant when it has the query's artist (P@1, P@10, mAP of
:func:`~sklearn_music.metrics.retrieval_report`). Means ± standard deviations over
the seeds; the table is written to ``docs/benchmarks/side.rst``.
"""

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import cpu_name

SR = 8000
MEL = dict(sr=SR, n_fft=512, hop_length=128, n_mels=32)
MODEL = dict(
    embedding_dim=32,
    audio_dim=32,
    n_filters=24,
    patch_frames=32,
    hidden_units=(64,),
    token_dim=16,
    text_dim=16,
    metadata_dim=4,
    max_tokens=48,
    patches_per_track=4,
    max_epochs=40,
    lr=1e-2,
    batch_size=32,
    modality_dropout=0.3,
    n_jobs=1,
)
SIDE = {
    "audio only": {},
    "audio + lyrics": dict(text_column="lyrics"),
    "audio + metadata": dict(categorical_columns=["genre"], numeric_columns=["year"]),
    "all": dict(text_column="lyrics", categorical_columns=["genre"], numeric_columns=["year"]),
}
ROWS = (*SIDE, "all, side inputs removed")


def make_data(seed, n_tracks, duration):
    """A DataFrame of spectrograms, lyrics, genre and year; artists; the split."""
    from sklearn.model_selection import train_test_split

    from sklearn_music import MelSpectrogramTransformer
    from sklearn_music.datasets import make_tracks

    tracks = make_tracks(n_tracks, duration=duration, sr=SR, random_state=seed, lyrics=True)
    specs = MelSpectrogramTransformer(**MEL).fit_transform(tracks.data)
    X = pd.DataFrame(
        {
            "spectrogram": list(specs),
            "lyrics": tracks.lyrics,
            "genre": tracks.genre,
            "year": tracks.year,
        }
    )
    train, test = train_test_split(
        np.arange(n_tracks), test_size=0.5, stratify=tracks.artist, random_state=seed
    )
    return X, tracks.artist, train, test


def run_seed(seed, n_tracks, duration, epochs):
    """P@1, P@10, mAP of every row for one seed, and the seconds of every fit."""
    from sklearn_music import MultimodalEmbedder
    from sklearn_music.metrics import retrieval_report

    X, artist, train, test = make_data(seed, n_tracks, duration)
    scores, seconds = {}, {}
    for name, side in SIDE.items():
        params = dict(MODEL, max_epochs=epochs, random_state=seed, **side)
        t0 = time.perf_counter()
        model = MultimodalEmbedder(**params).fit(X.iloc[train], artist[train])
        seconds[name] = time.perf_counter() - t0
        emb = model.transform(X.iloc[test])
        scores[name] = retrieval_report(emb, artist[test], k=(1, 10))
        if name == "all":
            bare = model.transform(X.iloc[test][["spectrogram"]])
            scores[ROWS[-1]] = retrieval_report(bare, artist[test], k=(1, 10))
            seconds[ROWS[-1]] = seconds[name]
        print(seed, name, scores[name], f"{seconds[name]:.0f} s", flush=True)
    print(seed, ROWS[-1], scores[ROWS[-1]], flush=True)
    return scores, seconds


def table(results, args, elapsed):
    """The reStructuredText page."""
    lines = [
        "Side information: lyrics and metadata",
        "======================================",
        "",
        __doc__.split("\n\n", 2)[2].strip(),
        "",
        f"Data: ``make_tracks({args.n_tracks}, duration={args.duration}, sr={SR}, "
        "lyrics=True)``: 4 genres x 3 artists, half of every artist's tracks held out. "
        f"Mel: {MEL}. Model: ``MultimodalEmbedder(**{dict(MODEL, max_epochs=args.epochs)})``.",
        "",
        f"Seeds: {args.seeds}. Machine: {cpu_name()}, 2 cores shared with other jobs "
        f"(loaded), 1 torch thread; whole run {elapsed / 60:.1f} min. "
        f"Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC. Command: "
        f"``{' '.join(['PYTHONPATH=. python benchmarks/bench_side.py', *sys.argv[1:]])}``. "
        "Every held-out artist has 6 tracks, so a query has 5 relevant tracks and "
        "P@10 is at most 0.5.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - Inputs",
        "     - P@1",
        "     - P@10",
        "     - mAP",
        "     - Fit seconds",
    ]
    for row in ROWS:
        lines.append(f"   * - {row}")
        for metric in ("P@1", "P@10", "mAP"):
            values = [scores[row][metric] for scores, _ in results]
            lines.append(f"     - {np.mean(values):.3f} ± {np.std(values):.3f}")
        secs = [seconds[row] for _, seconds in results]
        lines.append(f"     - {np.mean(secs):.0f}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-tracks", type=int, default=144)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--epochs", type=int, default=MODEL["max_epochs"])
    parser.add_argument("--quick", action="store_true", help="one seed, tiny data")
    parser.add_argument("--out", default="docs/benchmarks/side.rst")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.n_tracks, args.duration, args.epochs = [0], 48, 1.0, 2
    t0 = time.perf_counter()
    results = [run_seed(s, args.n_tracks, args.duration, args.epochs) for s in args.seeds]
    text = table(results, args, time.perf_counter() - t0)
    print(text)
    if not args.quick:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
