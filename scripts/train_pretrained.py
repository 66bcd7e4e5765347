"""Train the pretrained model ``soundtracks-v1`` shipped in ``sklearn_music/pretrained``.

One command, seeds fixed, CPU only::

    PYTHONPATH=$PWD .venv/bin/python scripts/train_pretrained.py \\
        --data /work/data/wide --out sklearn_music/pretrained/soundtracks-v1.pt

``--data`` is the ``wide`` open collection of Debian game soundtracks
(``DATA/<album>/<track>``, made by ``../shared/datasets/debian_soundtracks.py --set
wide``; licences in ``../shared/datasets/wide_tracks.tsv``). Every track of at least
30 s gives up to 3 clips of 30 s, centred in equal segments of the track (as in
``benchmarks/bench_real.py``), read at 16 kHz and turned into log-mel spectrograms by
``MelSpectrogramTransformer()``; the clips of a track are concatenated, so that the two
patches of a contrastive pair usually come from different parts of the track. The
spectrograms are cached in ``--cache`` (default ``/work/data/ssl_cache/wide.npz``, the
cache of ``benchmarks/research_ssl.py``, which holds the same clips).

The model is ``ConvEmbedder(**RECIPE).fit(X)``: self-supervised (contrastive) training
without labels, the recipe chosen in ``docs/research_log_ssl.rst``. The weights, the
band normalisation and the parameters are written with ``torch.save`` as plain tensors
and numbers (loadable with ``torch.load(weights_only=True)``); see
:func:`sklearn_music.pretrained.load` and ``docs/model_card.rst``.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

SR = 16000
CLIP_SECONDS = 30.0
MAX_CLIPS = 3
NAME = "soundtracks-v1"
# the estimator's parameters; n_jobs and verbose are run settings, not the recipe
RECIPE = dict(
    init=None,  # from random weights (ConvEmbedder's default starts from this model)
    embedding_dim=128,
    n_filters=64,
    hidden_units=(256,),
    dropout=0.1,
    patch_frames=96,
    patches_per_track=16,
    batch_size=64,
    optimizer="adamw",
    lr=1e-3,
    weight_decay=1e-4,
    temperature=0.1,
    augment=False,
    max_epochs=5,
    random_state=0,
)


def clip_offsets(duration, *, clip=CLIP_SECONDS, max_clips=MAX_CLIPS):
    """Start times (s) of up to ``max_clips`` clips centred in equal segments."""
    n = min(max_clips, int(np.floor(duration / clip)))
    seg = duration / max(n, 1)
    return [i * seg + (seg - clip) / 2 for i in range(n)]


def track_spectrograms(folder, cache):
    """Log-mel of every track: its clips concatenated, shape (128, 938 * n_clips)."""
    import soundfile as sf

    from sklearn_music import MelSpectrogramTransformer, load_audio
    from sklearn_music.datasets import load_audio_folder

    bunch = load_audio_folder(folder)
    rows = []
    for t, path in enumerate(bunch.filenames):
        rows += [(str(path), t, o) for o in clip_offsets(sf.info(path).duration)]
    files = np.array([r[0] for r in rows])
    offset = np.array([r[2] for r in rows])
    if cache and Path(cache).exists():
        with np.load(cache, allow_pickle=False) as z:
            same = np.array_equal(z["files"], files) and np.allclose(z["offset"], offset)
            if same:
                mel, track = z["mel"], z["track"]
                print(f"log-mel of {len(files)} clips read from {cache}", flush=True)
                return [_track_spec(mel[track == t]) for t in np.unique(track)], files
    mel_tf = MelSpectrogramTransformer()
    n = int(CLIP_SECONDS * SR)
    specs = {}
    for path, t, o in rows:
        wave = load_audio(path, sr=SR, offset=float(o), duration=CLIP_SECONDS)[:n]
        if len(wave) < n:
            raise ValueError(f"{path} at {o:.1f} s: clip shorter than {CLIP_SECONDS} s")
        specs.setdefault(t, []).append(mel_tf.fit_transform(wave[None])[0])
    return [_track_spec(np.stack(specs[t])) for t in sorted(specs)], files


def _track_spec(clips):
    """Concatenate the clips (n_clips, n_mels, n_frames) of a track along time.

    The values are rounded to float16 (the precision of the cache), so that a run
    from the cache and a run from the audio train on identical numbers.
    """
    spec = np.concatenate(list(clips), axis=1)
    return spec.astype(np.float16).astype(np.float32)


def save(est, path, *, seconds, n_tracks, n_clips):
    """Write the fitted embedder as plain tensors and numbers (weights_only-safe)."""
    import torch

    from sklearn_music import MelSpectrogramTransformer

    state = {k: v.detach().cpu() for k, v in est.net_.module_.state_dict().items()}
    payload = {
        "format_version": 1,
        "name": NAME,
        "mel_params": {
            k: v for k, v in MelSpectrogramTransformer().get_params().items() if k != "n_jobs"
        },
        "embedder_params": {k: v for k, v in RECIPE.items()},
        "n_mels": int(est.n_features_in_),
        "mean": torch.from_numpy(est.mean_),
        "scale": torch.from_numpy(est.scale_),
        "state_dict": state,
        "train_seconds": float(seconds),
        "n_tracks": int(n_tracks),
        "n_clips": int(n_clips),
        "torch_version": str(torch.__version__),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/work/data/wide", help="the wide collection")
    parser.add_argument("--out", default=f"sklearn_music/pretrained/{NAME}.pt")
    parser.add_argument("--cache", default="/work/data/ssl_cache/wide.npz")
    parser.add_argument("--n-jobs", type=int, default=2, help="torch threads")
    parser.add_argument("--max-epochs", type=int, default=RECIPE["max_epochs"])
    args = parser.parse_args(argv)

    import torch

    from sklearn_music import ConvEmbedder

    torch.manual_seed(0)
    specs, files = track_spectrograms(args.data, args.cache)
    print(f"{len(specs)} tracks, {len(files)} clips", flush=True)
    RECIPE["max_epochs"] = args.max_epochs
    est = ConvEmbedder(**RECIPE, n_jobs=args.n_jobs, verbose=1)
    t0 = time.perf_counter()
    est.fit(specs)
    seconds = time.perf_counter() - t0
    save(est, args.out, seconds=seconds, n_tracks=len(specs), n_clips=len(files))
    size = Path(args.out).stat().st_size
    print(
        json.dumps({"out": args.out, "bytes": size, "train_minutes": seconds / 60}),
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
