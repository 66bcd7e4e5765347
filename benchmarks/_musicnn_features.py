"""musicnn (MSD_musicnn) features of the 30-s clips of a soundtrack set.

Runs in its **own** virtual environment (musicnn needs TensorFlow; sklearn_music and
``bench_real.py`` do not)::

    python3 -m venv MUSICNN_VENV
    MUSICNN_VENV/bin/pip install tensorflow-cpu tf-keras librosa soundfile
    MUSICNN_VENV/bin/pip install --no-deps musicnn
    TF_USE_LEGACY_KERAS=1 MUSICNN_VENV/bin/python benchmarks/_musicnn_features.py \\
        --set dev [--data DATA] [--patches]

``DATA`` (default ``$SKLEARN_MUSIC_DATA``) holds the set ``DATA/<set>/<album>/<track>``
and the clip list ``DATA/shared_feats/clips_<set>.npz`` (else ``mel_<set>.npz``), both
written by ``python benchmarks/_real_data.py SET`` (``files`` relative to the set
folder, ``offset`` in seconds): the clips are exactly those of ``bench_real.py``.
Output: ``DATA/shared_feats/musicnn_<set>.npz``, and with ``--patches`` also
``musicnn_<set>_patches.npz`` (every layer of every 3-s patch, with its clip and start
time).

Differences from ``musicnn.extractor.extractor``: the clip is read at 16 kHz with
``librosa.load(offset=, duration=30)``; the log-mel ``log10(10000 * M + 1)`` is
computed in **float32** (musicnn casts the mel power ``M`` to float16 first, so
``10000 * M`` overflows to ``inf`` wherever ``M > 6.55``: float16 stops at 65504);
the graph is built and the weights restored once for all clips; patches are 187
frames (3 s, musicnn's training length), not overlapping, 10 per 30-s clip, fed in
batches of 64. ``--check AUDIO`` compares the tags with ``musicnn.extractor`` (equal to
1e-4 on a quiet excerpt; on the same excerpt at its real level about 2 % of the mel
bins overflow in musicnn's float16 path and its tags move by up to 0.37).
Per clip the script stores the mean over its patches of each layer:
``taggram`` (the 50 tag probabilities), ``mean_pool`` and ``max_pool`` (753-d, the
temporal mean / max of the front-end + mid-end feature map) and ``penultimate``
(200-d, the dense layer before the tags).
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

LAYERS = ("taggram", "mean_pool", "max_pool", "penultimate")
BATCH = 64


def build(model="MSD_musicnn"):
    """The musicnn graph with restored weights: (session, input, outputs, n_frames, tags)."""
    import librosa
    import tensorflow as tf
    from musicnn import configuration as config
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    n_frames = (
        librosa.time_to_frames(3, sr=config.SR, n_fft=config.FFT_SIZE, hop_length=config.FFT_HOP)
        + 1
    )
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, n_frames, config.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        y, *_, mean_pool, max_pool, penultimate = models.define_model(
            x, is_training, model, len(config.MSD_LABELS)
        )
        outputs = {
            "taggram": tf.nn.sigmoid(y),
            "mean_pool": tf.compat.v1.layers.flatten(mean_pool),
            "max_pool": tf.compat.v1.layers.flatten(max_pool),
            "penultimate": penultimate,
        }
    sess = tf.compat.v1.Session()
    sess.run(tf.compat.v1.global_variables_initializer())
    weights = os.path.join(os.path.dirname(models.__file__), model) + "/"
    tf.compat.v1.train.Saver().restore(sess, weights)
    return sess, (x, is_training), outputs, n_frames, list(config.MSD_LABELS)


def clip_patches(path, offset, n_frames, *, seconds=30.0):
    """Float32 musicnn log-mel patches of one clip: (n_patches, n_frames, 96)."""
    import librosa
    from musicnn import configuration as config

    audio, sr = librosa.load(path, sr=config.SR, offset=offset, duration=seconds)
    mel = librosa.feature.melspectrogram(
        y=audio, sr=sr, hop_length=config.FFT_HOP, n_fft=config.FFT_SIZE, n_mels=config.N_MELS
    ).T.astype(np.float32)
    rep = np.log10(np.float32(10000) * mel + 1)
    n = rep.shape[0] // n_frames
    if n == 0:
        raise ValueError(f"{path} at {offset:.1f} s: shorter than one 3-s patch")
    return rep[: n * n_frames].reshape(n, n_frames, config.N_MELS)


def run(folder, files, offsets, *, save=None, every=200, verbose=True):
    """Per-patch outputs of every clip; returns (dict layer -> list of arrays, tags, hop).

    ``save(per_clip, tags, hop)`` is called after about every ``every`` clips with the
    clips done so far (a checkpoint that others can read while the run goes on).
    """
    from musicnn import configuration as config

    sess, (x, is_training), outputs, n_frames, tags = build()
    names = list(outputs)
    per_clip = {k: [] for k in names}
    pending, owners = [], []

    def flush():
        if not pending:
            return
        batch = np.concatenate(pending)
        res = {k: [] for k in names}
        for s in range(0, len(batch), BATCH):
            out = sess.run(
                [outputs[k] for k in names], {x: batch[s : s + BATCH], is_training: False}
            )
            for k, v in zip(names, out):
                res[k].append(v)
        res = {k: np.concatenate(v) for k, v in res.items()}
        start = 0
        for n in owners:
            for k in names:
                per_clip[k].append(res[k][start : start + n].astype(np.float32))
            start += n
        pending.clear()
        owners.clear()

    t0, last_save = time.perf_counter(), [0]
    for i, (f, o) in enumerate(zip(files, offsets)):
        p = clip_patches(str(Path(folder) / f), float(o), n_frames)
        pending.append(p)
        owners.append(len(p))
        if sum(owners) >= 4 * BATCH:
            flush()
            if save is not None and len(per_clip["taggram"]) // every > last_save[0]:
                last_save[0] = len(per_clip["taggram"]) // every
                save(per_clip, tags, n_frames * config.FFT_HOP / config.SR)
        if verbose and (i + 1) % 100 == 0:
            print(f"  {i + 1}/{len(files)} clips ({time.perf_counter() - t0:.0f} s)", flush=True)
    flush()
    sess.close()
    return per_clip, tags, n_frames * config.FFT_HOP / config.SR


def check_reference(path, *, offset=40.0, seconds=6.1):
    """Compare this script's tags with ``musicnn.extractor`` on one excerpt of ``path``.

    The excerpt is written twice to temporary WAV files, at its level and at 1 % of it
    (where musicnn's float16 path cannot overflow); prints the fraction of mel bins
    where ``10000 * M`` overflows in float16 and the largest tag difference.
    """
    import tempfile

    import librosa
    import soundfile as sf
    from musicnn import configuration as config
    from musicnn.extractor import extractor

    sess, (x, is_training), outputs, n_frames, _ = build()
    y, _ = librosa.load(path, sr=config.SR, offset=offset, duration=seconds)
    with tempfile.TemporaryDirectory() as tmp:
        for name, gain in (("1 % level", 0.01), ("original level", 1.0)):
            wav = os.path.join(tmp, "clip.wav")
            sf.write(wav, (gain * y).astype(np.float32), config.SR, subtype="FLOAT")
            mel = librosa.feature.melspectrogram(
                y=gain * y,
                sr=config.SR,
                hop_length=config.FFT_HOP,
                n_fft=config.FFT_SIZE,
                n_mels=config.N_MELS,
            )
            with np.errstate(over="ignore"):
                over = float(np.mean(np.isinf(10000 * mel.astype(np.float16))))
            mine = sess.run(
                outputs["taggram"],
                {x: clip_patches(wav, 0.0, n_frames, seconds=seconds), is_training: False},
            )
            ref = extractor(wav, model="MSD_musicnn", extract_features=False)[0]
            print(
                f"{name}: {over:.2%} of mel bins overflow in float16; "
                f"max |float32 tags - musicnn.extractor tags| = {np.abs(mine - ref).max():.2g}"
            )


def middle_first(track):
    """Clip order: the middle clip of every track first, then the others in order."""
    track = np.asarray(track)
    first = []
    for t in np.unique(track):
        rows = np.flatnonzero(track == t)
        first.append(rows[len(rows) // 2])
    rest = np.setdiff1d(np.arange(len(track)), first)
    return np.concatenate([np.array(first, dtype=int), rest])


def write(feats, name, per_clip, done, files, offsets, meta, tags, patch_seconds, **kw):
    """Save the clips ``done`` (rows of the clip list), sorted by row, atomically."""
    sort = np.argsort(done, kind="stable")
    rows = done[sort]
    out = {k: np.stack([per_clip[k][i].mean(axis=0) for i in sort]) for k in LAYERS}
    out |= {"files": files[rows], "offset": offsets[rows], "clip_index": rows}
    out |= {k: meta[k][rows] for k in ("album", "track")}
    out |= {k: meta[k] for k in ("album_names", "track_files")}
    out |= {"tags": np.array(tags), "complete": np.array(kw["complete"])}
    n = np.array([len(per_clip["taggram"][i]) for i in sort])
    out["n_patches"] = n
    _save(feats / f"musicnn_{name}.npz", out)
    if kw["patches"]:
        patch = {
            **{k: np.concatenate([per_clip[k][i] for i in sort]) for k in LAYERS},
            "clip": np.repeat(rows, n),
            "start": np.concatenate(
                [o + patch_seconds * np.arange(k) for o, k in zip(offsets[rows], n)]
            ),
            "patch_seconds": np.array(patch_seconds),
            "files": files,
            "offset": offsets,
            "tags": np.array(tags),
            "complete": np.array(kw["complete"]),
        }
        _save(feats / f"musicnn_{name}_patches.npz", patch)


def _save(dest, arrays):
    tmp = Path(str(dest) + ".part.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, dest)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", help="set name: dev or wide")
    parser.add_argument("--data", default=os.environ.get("SKLEARN_MUSIC_DATA"))
    parser.add_argument("--feats", default=None, help="default DATA/shared_feats")
    parser.add_argument("--limit", type=int, default=None, help="first N clips only (a test)")
    parser.add_argument("--patches", action="store_true", help="also every layer per patch")
    parser.add_argument(
        "--middle-first", action="store_true", help="the middle clip of every track first"
    )
    parser.add_argument("--check", metavar="AUDIO", help="compare with musicnn.extractor, exit")
    args = parser.parse_args(argv)
    if args.check:
        check_reference(args.check)
        return 0
    if not args.data:
        parser.error("give --data or set SKLEARN_MUSIC_DATA")
    if not args.set:
        parser.error("give --set")
    feats = Path(args.feats or Path(args.data) / "shared_feats")
    clips = feats / f"clips_{args.set}.npz"
    if not clips.exists():
        clips = feats / f"mel_{args.set}.npz"
    with np.load(clips) as z:
        files, offsets = z["files"], z["offset"]
        meta = {k: z[k] for k in ("album", "track", "album_names", "track_files")}
    order = np.arange(len(files))[: args.limit]
    if args.middle_first:
        order = middle_first(meta["track"][order])
    folder = Path(args.data) / args.set
    suffix = f"_first{args.limit}" if args.limit else ""
    t0 = time.perf_counter()

    def save(per_clip, tags, patch_seconds, complete=False):
        done = order[: len(per_clip["taggram"])]
        write(
            feats,
            args.set + suffix,
            per_clip,
            done,
            files,
            offsets,
            meta,
            tags,
            patch_seconds,
            patches=args.patches,
            complete=complete,
        )
        print(f"  saved {len(done)} clips ({time.perf_counter() - t0:.0f} s)", flush=True)

    per_clip, tags, patch_seconds = run(folder, files[order], offsets[order], save=save)
    save(per_clip, tags, patch_seconds, complete=len(order) == len(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
