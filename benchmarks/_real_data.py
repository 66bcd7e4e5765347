"""Clips, cached features and retrieval metrics shared by ``bench_real.py``.

A *set* is a folder ``<set>/<album>/<track>`` of the Debian game-soundtrack
collections (``dev``: 8 albums, ``wide``: 89 albums; no album in both), made by
``../shared/datasets/debian_soundtracks.py DATA_DIR --set <set>``. The data root is
``--data`` or the environment variable ``SKLEARN_MUSIC_DATA``; a set lives in
``DATA/<set>`` and its features are cached in ``DATA/shared_feats/mel_<set>.npz``
(``--feats``). ``python benchmarks/_real_data.py SET`` writes the clip list
``clips_<set>.npz`` (what ``_musicnn_features.py`` reads) and ``mel_<set>.npz``.
"""

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

SR = 16000
CLIP_SECONDS = 30.0
MAX_CLIPS = 6
CACHE_VERSION = 2
ENV_DATA = "SKLEARN_MUSIC_DATA"


def data_root(arg=None):
    """The data root: ``arg``, else ``$SKLEARN_MUSIC_DATA``; ``None`` if neither."""
    root = arg or os.environ.get(ENV_DATA)
    return Path(root) if root else None


def clip_offsets(duration, *, clip=CLIP_SECONDS, max_clips=MAX_CLIPS):
    """Start times (s) of the clips of a track of ``duration`` seconds.

    ``n = min(max_clips, floor(duration / clip))`` clips, each centred in one of ``n``
    equal segments of the track; none for a track shorter than one clip.
    """
    n = min(max_clips, int(np.floor(duration / clip)))
    seg = duration / max(n, 1)
    return [i * seg + (seg - clip) / 2 for i in range(n)]


def plan_clips(folder):
    """List the clips of a set.

    Returns a dict: ``files`` (clip's track, path relative to ``folder``), ``album``,
    ``track`` (int codes), ``offset`` (s), ``album_names``, ``track_files``
    (relative paths, indexed by ``track``) and ``skipped`` ((path, seconds) of the
    tracks shorter than one clip).
    """
    import soundfile as sf

    from sklearn_music.datasets import load_audio_folder

    folder = Path(folder)
    bunch = load_audio_folder(str(folder))
    rows, skipped, track_files = [], [], []
    for path, label in zip(bunch.filenames, bunch.target):
        duration = sf.info(path).duration
        offsets = clip_offsets(duration)
        rel = os.path.relpath(path, folder)
        if not offsets:
            skipped.append((rel, duration))
            continue
        rows += [(rel, label, len(track_files), o) for o in offsets]
        track_files.append(rel)
    files, album, track, offset = (np.array(c) for c in zip(*rows))
    return {
        "files": files,
        "album": album.astype(int),
        "track": track.astype(int),
        "offset": offset.astype(float),
        "album_names": np.array(bunch.target_names),
        "track_files": np.array(track_files),
        "skipped": skipped,
    }


def _feature_params(est):
    """The parameters that change the features of a 30-s clip, as text.

    ``short_tracks`` (added after the caches were made) is left out: it acts only on
    a track that ends before ``offset``, and the clips here are read with ``offset=0``.
    """
    params = est.get_params()
    params.pop("short_tracks", None)
    return repr(params)


def _key(plan):
    from sklearn_music import MelSpectrogramTransformer, MFCCStatistics

    listing = "\n".join(f"{f}\t{o:.3f}" for f, o in zip(plan["files"], plan["offset"]))
    return np.array(
        [
            f"v{CACHE_VERSION}",
            hashlib.sha1(listing.encode()).hexdigest(),
            _feature_params(MelSpectrogramTransformer()),
            _feature_params(MFCCStatistics()),
        ]
    )


def _compute(folder, plan, *, verbose=True):
    from sklearn_music import MelSpectrogramTransformer, MFCCStatistics, load_audio

    mel_tf, mfcc_tf = MelSpectrogramTransformer(), MFCCStatistics()
    n, n_samples = len(plan["files"]), int(CLIP_SECONDS * SR)
    mel = mfcc = None
    t0 = time.perf_counter()
    tracks = np.unique(plan["track"])
    for i, t in enumerate(tracks):  # one track at a time keeps memory low
        rows = np.flatnonzero(plan["track"] == t)
        path = str(Path(folder) / plan["track_files"][t])
        waves = [
            load_audio(path, sr=SR, offset=float(plan["offset"][r]), duration=CLIP_SECONDS)[
                :n_samples
            ]
            for r in rows
        ]
        if min(len(w) for w in waves) != n_samples:
            raise ValueError(f"{path}: a clip is shorter than {CLIP_SECONDS} s")
        waves = np.stack(waves)
        m, f = mel_tf.fit_transform(waves), mfcc_tf.fit_transform(waves)
        if mel is None:  # preallocate: the wide set's log-mels are about 1 GB
            mel = np.empty((n,) + m.shape[1:], dtype=np.float32)
            mfcc = np.empty((n,) + f.shape[1:], dtype=np.float32)
        mel[rows], mfcc[rows] = m, f
        if verbose and (i + 1) % 20 == 0:
            print(
                f"  {Path(folder).name}: {i + 1}/{len(tracks)} tracks "
                f"({time.perf_counter() - t0:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return mel, mfcc


def prepare(folder, cache, *, verbose=True):
    """Log-mel spectrograms and MFCC statistics of every clip of a set, cached.

    ``cache`` is an ``.npz`` path (``None``: no cache). Returns a dict of arrays: the
    plan of :func:`plan_clips` plus ``mel`` (clips, 128, 938) and ``mfcc`` (clips, 60),
    ``target_names`` (album names, a list) and ``skipped``.
    """
    plan = plan_clips(folder)
    key = _key(plan)
    extra = {"target_names": list(plan["album_names"]), "skipped": plan["skipped"]}
    if cache and Path(cache).exists():
        with np.load(cache, allow_pickle=False) as z:
            if "key" in z and np.array_equal(z["key"], key):
                return {k: z[k] for k in z.files} | extra
    mel, mfcc = _compute(folder, plan, verbose=verbose)
    data = {k: v for k, v in plan.items() if k != "skipped"}
    data |= {"key": key, "mel": mel, "mfcc": mfcc, "sr": np.array(SR)}
    data["clip_seconds"] = np.array(CLIP_SECONDS)
    if cache:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(str(cache) + ".part.npz")
        np.savez(tmp, **data)
        os.replace(tmp, cache)  # no partial cache left behind
    return data | extra


# --------------------------------------------------------------------------------------
# Retrieval metrics
# --------------------------------------------------------------------------------------
def retrieval_scores(emb, album, track, *, k=(1, 10)):
    """Per-query precision@k and average precision, cosine ranking, own track excluded.

    Returns a dict of arrays over the queries that have at least one relevant clip,
    plus ``"n_skipped"`` (queries without any).
    """
    emb = np.asarray(emb, dtype=np.float64)
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = emb / np.where(norm > 0, norm, 1.0)
    sim = emb @ emb.T
    out = {f"p@{kk}": [] for kk in k} | {"ap": [], "chance_p": []}
    skipped = 0
    for q in range(len(emb)):
        cand = np.flatnonzero(track != track[q])
        rel = album[cand] == album[q]
        if not rel.any():
            skipped += 1
            continue
        # stable sort on -sim, ties broken by index: deterministic
        order = np.argsort(-sim[q, cand], kind="stable")
        hits = rel[order]
        for kk in k:
            out[f"p@{kk}"].append(hits[:kk].mean())
        ranks = np.flatnonzero(hits) + 1
        out["ap"].append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
        out["chance_p"].append(rel.mean())
    out = {name: np.array(v) for name, v in out.items()}
    out["n_skipped"] = skipped
    return out


def pool(results):
    """Concatenate the per-query scores of several folds."""
    keys = [k for k in results[0] if k != "n_skipped"]
    pooled = {k: np.concatenate([r[k] for r in results]) for k in keys}
    pooled["n_skipped"] = sum(r["n_skipped"] for r in results)
    return pooled


def summary(scores):
    """Mean P@1, P@10 and mAP of per-query scores."""
    return {
        "P@1": float(scores["p@1"].mean()),
        "P@10": float(scores["p@10"].mean()),
        "mAP": float(scores["ap"].mean()),
    }


def chance_ap(album, track):
    """Expected AP of a random ranking over the queries of one pool of clips."""
    aps = []
    for q in range(len(album)):
        cand = track != track[q]
        rel = album[cand] == album[q]
        n, r = cand.sum(), rel.sum()
        if r == 0:
            continue
        # E[AP] of a random permutation (Bestgen 2015): (1/n)(r-1)/(n-1)*(n-H_n)+H_n/n
        h = np.sum(1.0 / np.arange(1, n + 1))
        aps.append(((r - 1) / (n - 1) * (n - h) + h) / n if n > 1 else 1.0)
    return aps


def main(argv=None):
    parser = argparse.ArgumentParser(description="Cache the clips and log-mels of a set.")
    parser.add_argument("set", help="set name, a folder of the data root: dev or wide")
    parser.add_argument("--data", default=None, help=f"data root (default ${ENV_DATA})")
    parser.add_argument("--feats", default=None, help="output folder (default DATA/shared_feats)")
    args = parser.parse_args(argv)
    root = data_root(args.data)
    if root is None:
        parser.error(f"give --data or set {ENV_DATA}")
    feats = Path(args.feats) if args.feats else root / "shared_feats"
    feats.mkdir(parents=True, exist_ok=True)
    plan = plan_clips(root / args.set)
    np.savez(feats / f"clips_{args.set}.npz", **{k: v for k, v in plan.items() if k != "skipped"})
    t0 = time.perf_counter()
    data = prepare(root / args.set, feats / f"mel_{args.set}.npz")
    print(
        f"{args.set}: {data['mel'].shape[0]} clips of {len(plan['track_files'])} tracks, "
        f"{len(plan['skipped'])} tracks under {CLIP_SECONDS:.0f} s skipped "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
