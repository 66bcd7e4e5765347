"""Research: self-supervised (contrastive) and distilled training of the CNN embedder,
measured by transfer to albums it never heard.

Run from the repository root::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/research_ssl.py prepare dev|wide
    PYTHONPATH=$PWD .venv/bin/python benchmarks/research_ssl.py run NAME [...] [--set K=V ...]
    PYTHONPATH=$PWD .venv/bin/python benchmarks/research_ssl.py probe [--ensemble RUN ...]

**Data.** Training: the ``wide`` open collection (``$SKLEARN_MUSIC_DATA/wide/<album>/<track>``,
89 albums of Debian game soundtracks), up to ``WIDE_CLIPS`` 30-s clips per track, placed
as in ``bench_real.py`` (centred in equal segments of the track). Evaluation: the
``dev`` collection (``$SKLEARN_MUSIC_DATA/dev``, 8 other albums, 115 tracks of at least 30 s,
up to 6 clips each, exactly ``bench_real.py``'s clips). Nothing of ``dev`` is used for
training, so every score is a *transfer* score. Log-mel spectrograms
(``MelSpectrogramTransformer()``: 128 bands, 16 kHz, hop 512, 938 frames per clip) and
``MFCCStatistics()`` are computed once and cached in ``$SKLEARN_MUSIC_DATA/ssl_cache``
(outside the repository).

**Protocol.** A model trained on ``wide`` embeds every ``dev`` clip (mean of the patch
embeddings, patches every ``patch_frames // 2`` frames); every clip queries all other
clips by cosine similarity, the clips of its own track excluded
(:func:`sklearn_music.metrics.retrieval_report` with ``groups=track``); a clip of the
same album is relevant. MFCC statistics, standardised on the ``dev`` clips, are scored
the same way (row ``mfcc``).

**Training.** A plain torch loop around :class:`sklearn_music._modules.PatchEncoder`
(the encoder of ``ConvEmbedder``). Objectives:

- ``contrastive``: NT-Xent (SimCLR / COLA): a batch holds two random patches of each of
  ``batch_tracks`` clips; each patch goes through cheap spectrogram-domain augmentations
  (random gain, a roll of +-``shift`` mel bins, time and frequency masks, a low-level
  mix of another clip's patch, a random spectral tilt), the encoder and a projection
  head (linear -> ReLU -> linear); the two patches of a clip are a positive pair, every
  other patch in the batch a negative, at temperature ``tau``.
- ``distill``: regress a musicnn layer of the track (read from
  ``$SKLEARN_MUSIC_DATA/shared_feats/musicnn_wide.npz``, written by
  ``_musicnn_features.py``) from the embedding through a linear head:
  ``distill_layer="taggram"``, the 50 tag probabilities (binary cross-entropy against
  the soft tags), or a pooled layer such as ``"mean_pool"`` (753-d, standardised per
  dimension; mean squared error). ``distill_target="track"`` regresses the track's
  mean over musicnn's clips from every patch; ``"patch"`` (with ``train_clips="real"``)
  puts the first patch of each pair on one of musicnn's own 3-s patches and regresses
  that patch's layer, read from ``patch_file`` (``_musicnn_features.py --patches``).
- both, summed with ``distill_weight``.

``frontend="musicnn"`` puts a musicnn-style front-end (2-D timbral filters max-pooled
over frequency, 1-D temporal filters; :func:`_musicnn_front`) before the encoder's 1-D
convolutions.

Every experiment is listed in ``EXPERIMENTS`` with its settings (``--set KEY=VALUE``
overrides any of ``DEFAULTS`` for one run, which is then named after the overrides;
``train_clips="real"`` trains on ``bench_real.py``'s cache of the wide set, up to 6
clips a track, instead of this script's 3); ``run`` appends a
line (settings, minutes, dev P@1 / P@10 / mAP) to ``$SKLEARN_MUSIC_DATA/ssl_cache/results.jsonl``
and the table goes to ``docs/research_log_ssl.rst`` by hand, with what each change did.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _real_data import CLIP_SECONDS, SR, clip_offsets, data_root  # noqa: E402


def _data(rel):
    """``$SKLEARN_MUSIC_DATA/rel``; the variable must be set (no machine's path here)."""
    root = data_root()
    if root is None:
        sys.exit("set SKLEARN_MUSIC_DATA to the folder holding dev/ and wide/")
    return root / rel


CACHE = Path(os.environ["SSL_CACHE"]) if "SSL_CACHE" in os.environ else None
WIDE_CLIPS = 3
DEV_CLIPS = 6


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------
def _plan(folder, max_clips):
    import soundfile as sf

    from sklearn_music.datasets import load_audio_folder

    bunch = load_audio_folder(folder)
    rows = []
    for t, (path, label) in enumerate(zip(bunch.filenames, bunch.target)):
        for o in clip_offsets(sf.info(path).duration, max_clips=max_clips):
            rows.append((path, label, t, o))
    files, album, track, offset = (np.array(c) for c in zip(*rows))
    return files, album.astype(int), track.astype(int), offset.astype(float)


def prepare(name, folder, max_clips, *, dtype=np.float32):
    """Log-mel (and MFCC statistics) of the clips of ``folder``, cached."""
    from sklearn_music import MelSpectrogramTransformer, MFCCStatistics, load_audio

    out = _cache() / f"{name}.npz"
    if out.exists():
        return out
    files, album, track, offset = _plan(folder, max_clips)
    mel_tf, mfcc_tf = MelSpectrogramTransformer(), MFCCStatistics()
    n = int(CLIP_SECONDS * SR)
    mels = np.zeros((len(files), mel_tf.n_mels, 1 + n // mel_tf.hop_length), dtype=dtype)
    mfccs = np.zeros((len(files), 3 * mfcc_tf.n_mfcc), dtype=np.float32)
    t0 = time.perf_counter()
    for r in range(len(files)):
        wave = load_audio(str(files[r]), sr=SR, offset=float(offset[r]), duration=CLIP_SECONDS)
        if len(wave) < n:
            raise ValueError(f"{files[r]} at {offset[r]:.1f} s: clip shorter than 30 s")
        wave = wave[None, :n]
        mels[r] = mel_tf.fit_transform(wave)[0]
        mfccs[r] = mfcc_tf.fit_transform(wave)[0]
        if (r + 1) % 50 == 0:
            print(
                f"{name}: {r + 1}/{len(files)} clips, {time.perf_counter() - t0:.0f} s", flush=True
            )
    _cache().mkdir(parents=True, exist_ok=True)
    tmp = _cache() / f"{name}.part.npz"
    np.savez(tmp, mel=mels, mfcc=mfccs, album=album, track=track, offset=offset, files=files)
    os.replace(tmp, out)
    print(f"{name}: {len(files)} clips in {time.perf_counter() - t0:.0f} s -> {out}")
    return out


# --------------------------------------------------------------------------------------
# Experiments: name -> settings (missing keys take DEFAULTS)
# --------------------------------------------------------------------------------------
DEFAULTS = dict(
    objective="contrastive",  # "contrastive", "album", "distill", "contrastive+distill"
    pair="track",  # positives: two clips of a track ("track") or one clip ("clip")
    steps=600,
    batch_tracks=64,
    patch_frames=96,
    n_filters=64,
    embedding_dim=128,
    hidden_units=(256,),
    dropout=0.1,
    tau=0.1,
    lr=1e-3,
    weight_decay=1e-4,
    aug_p=0.5,
    gain_db=6.0,
    tilt_db=6.0,
    max_shift=2,
    mix_db=-10.0,
    mask_frac=0.1,
    distill_weight=1.0,
    distill_layer="taggram",  # musicnn layer regressed by "distill"
    distill_target="track",  # "track": the track's mean; "patch": musicnn's own 3-s patch
    patch_file="shared_feats/musicnn_wide_patches.npz",  # under $SKLEARN_MUSIC_DATA
    train_clips="ssl",  # "ssl": this script's 3 clips a track; "real": bench_real's (up to 6)
    frontend="none",  # "musicnn": 2-D timbral + temporal filters before the 1-D trunk
    front_filters=32,  # filters of each front-end branch
    front_stride=1,  # stride of the timbral filters along the mel axis
    threads=1,
    seed=0,
)
NO_AUG = dict(aug_p=0.0, max_shift=0)
EXPERIMENTS = {
    "random": dict(steps=0),
    "c-base": dict(),
    "c-noaug": dict(NO_AUG),
    "c-clip": dict(pair="clip"),
    "c-tau02": dict(tau=0.2),
    "c-long": dict(steps=1500),
    "c-noaug-long": dict(NO_AUG, steps=1000),
    "c-gaintilt": dict(max_shift=0, mix_db=-100.0, mask_frac=0.0),
    "c-gaintilt-s1": dict(max_shift=0, mix_db=-100.0, mask_frac=0.0, seed=1),
    "distill-gt": dict(objective="distill", max_shift=0, mix_db=-100.0, mask_frac=0.0),
    "c+distill-gt": dict(
        objective="contrastive+distill", max_shift=0, mix_db=-100.0, mask_frac=0.0
    ),
    "distill-pool": dict(
        objective="distill", distill_layer="mean_pool", max_shift=0, mix_db=-100.0, mask_frac=0.0
    ),
    "c+distill-pool": dict(
        objective="contrastive+distill",
        distill_layer="mean_pool",
        max_shift=0,
        mix_db=-100.0,
        mask_frac=0.0,
    ),
    "c-wide": dict(n_filters=128, steps=1200),
    "c-front": dict(frontend="musicnn", max_shift=0, mix_db=-100.0, mask_frac=0.0),
    "album": dict(objective="album", **NO_AUG),
    "album-aug": dict(objective="album"),
    "distill": dict(objective="distill"),
    "c+distill": dict(objective="contrastive+distill"),
}


def _cache():
    return CACHE if CACHE is not None else _data("ssl_cache")


def _checkpoint(name):
    """The file of run ``name``'s trained encoder in the cache."""
    return _cache() / (name.replace("/", "_") + ".pt")


def _load(name):
    with np.load(_cache() / f"{name}.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _band_stats(mel):
    """Per-band mean and standard deviation over all frames (float64, chunked)."""
    s = np.zeros(mel.shape[1])
    s2 = np.zeros(mel.shape[1])
    for i in range(0, len(mel), 64):
        chunk = mel[i : i + 64].astype(np.float64)
        s += chunk.sum(axis=(0, 2))
        s2 += (chunk**2).sum(axis=(0, 2))
    n = len(mel) * mel.shape[2]
    mean = s / n
    return mean.astype(np.float32), np.sqrt(np.maximum(s2 / n - mean**2, 1e-8)).astype(np.float32)


def _sample_batch(data, cfg, rng):
    """Two patches of each of ``batch_tracks`` distinct tracks (clip rows, offsets)."""
    track = data["track"]
    tracks = rng.choice(data["tracks"], size=cfg["batch_tracks"], replace=False)
    rows1, rows2 = [], []
    for t in tracks:
        rows = data["rows_of"][t]
        r1 = rows[rng.integers(len(rows))]
        r2 = rows[rng.integers(len(rows))] if cfg["pair"] == "track" else r1
        rows1.append(r1)
        rows2.append(r2)
    n_frames = data["mel"].shape[2]
    f = cfg["patch_frames"]
    out = []
    for rows in (rows1, rows2):
        offs = rng.integers(0, n_frames - f + 1, size=len(rows))
        out.append((np.array(rows), offs))
    assert len(set(track[rows1])) == len(rows1)
    return out


def _patches(data, rows, offs, f):
    import torch

    x = np.stack([data["mel"][r, :, o : o + f] for r, o in zip(rows, offs)]).astype(np.float32)
    return torch.from_numpy((x - data["mean"][:, None]) / data["scale"][:, None])


def load_patch_targets(wide, layer, path, patch_frames):
    """musicnn's ``layer`` for every 3-s patch that it computed on the wide clips of
    ``bench_real.py`` (``train_clips="real"``), standardised per dimension; sets
    ``wide["patches_of"]``: clip row -> (frame offsets of our patches that start where
    musicnn's do, their targets), and returns the target width."""
    from sklearn_music import MelSpectrogramTransformer

    with np.load(path) as z:
        values, clip, start, files = z[layer].astype(np.float64), z["clip"], z["start"], z["files"]
        offset = z["offset"]
    if not np.array_equal(files, wide["files"]):
        raise SystemExit(f"{path}: its clips are not those of train_clips='real'")
    values = ((values - values.mean(axis=0)) / (values.std(axis=0) + 1e-6)).astype(np.float32)
    hop = MelSpectrogramTransformer().hop_length  # the log-mel of the wide cache
    frames = np.round((start - offset[clip]) * SR / hop).astype(int)
    ok = frames + patch_frames <= wide["mel"].shape[2]
    wide["patches_of"] = {
        r: (frames[ok & (clip == r)], values[ok & (clip == r)]) for r in np.unique(clip[ok])
    }
    rows_of = {}
    for r in wide["patches_of"]:
        rows_of.setdefault(int(wide["track"][r]), []).append(r)
    wide["patched_rows_of"] = rows_of
    n = sum(len(v[0]) for v in wide["patches_of"].values())
    print(f"{path}: {n} patches of {len(wide['patches_of'])} clips, {len(rows_of)} tracks")
    return values.shape[1]


def _aligned_view(data, rows, rng):
    """For each row's track: a clip with musicnn patches, one of those patches' frame
    offsets, and its target (NaN where the track has none)."""
    out_rows, offs, targets = [], [], []
    width = len(next(iter(data["patches_of"].values()))[1][0])
    for r in rows:
        cands = data["patched_rows_of"].get(int(data["track"][r]))
        if not cands:
            out_rows.append(r)
            offs.append(0)
            targets.append(np.full(width, np.nan, dtype=np.float32))
            continue
        c = cands[rng.integers(len(cands))]
        frames, values = data["patches_of"][c]
        k = rng.integers(len(frames))
        out_rows.append(c)
        offs.append(frames[k])
        targets.append(values[k])
    return np.array(out_rows), np.array(offs), np.stack(targets)


def train(cfg, data, tags=None):
    """Train a PatchEncoder with the objective of ``cfg``; returns (encoder, seconds)."""
    import torch
    from torch.nn import functional as F

    from sklearn_music._contrastive import ProjectionHead, SpecAugment, nt_xent_loss
    from sklearn_music._modules import PatchEncoder, he_init_convs

    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    n_mels = data["mel"].shape[1]
    front = None
    if cfg["frontend"] == "musicnn":
        front = _musicnn_front(n_mels, cfg["front_filters"], cfg["front_stride"])
    enc = PatchEncoder(
        n_mels if front is None else 5 * cfg["front_filters"],
        n_filters=cfg["n_filters"],
        hidden_units=tuple(cfg["hidden_units"]),
        embedding_dim=cfg["embedding_dim"],
        dropout=cfg["dropout"],
    )
    if front is not None:  # forward, pooling and embed_clips unchanged
        enc.input_norm = torch.nn.Sequential(torch.nn.BatchNorm1d(n_mels), front)
    he_init_convs(enc)
    heads = torch.nn.ModuleDict()
    obj = cfg["objective"]
    if "contrastive" in obj:
        heads["proj"] = ProjectionHead(cfg["embedding_dim"], 64)
    if obj == "album":
        heads["album"] = torch.nn.Linear(cfg["embedding_dim"], int(data["album"].max()) + 1)
    if "distill" in obj:
        heads["tags"] = torch.nn.Linear(cfg["embedding_dim"], tags.shape[1])
    aug = SpecAugment(
        data["mean"],
        data["scale"],
        p=cfg["aug_p"],
        gain_db=cfg["gain_db"],
        tilt_db=cfg["tilt_db"],
        max_shift=cfg["max_shift"],
        mix_db=cfg["mix_db"],
        mask_frac=cfg["mask_frac"],
    )
    params = list(enc.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg["lr"], total_steps=max(1, cfg["steps"]), pct_start=0.1
    )
    t0 = time.perf_counter()
    enc.train()
    for step in range(cfg["steps"]):
        (r1, o1), (r2, o2) = _sample_batch(data, cfg, rng)
        if "distill" in obj and cfg["distill_target"] == "patch":
            r1, o1, t1 = _aligned_view(data, r1, rng)
        x1 = aug(_patches(data, r1, o1, cfg["patch_frames"]))
        x2 = aug(_patches(data, r2, o2, cfg["patch_frames"]))
        e = enc(torch.cat([x1, x2]))
        e1, e2 = e[: len(r1)], e[len(r1) :]
        loss = 0.0
        if "contrastive" in obj:
            loss = loss + nt_xent_loss(heads["proj"](e1), heads["proj"](e2), cfg["tau"])
        if obj == "album":
            y = torch.as_tensor(np.concatenate([data["album"][r1], data["album"][r2]]))
            loss = loss + F.cross_entropy(heads["album"](e), y)
        if "distill" in obj:
            w = cfg["distill_weight"] if "contrastive" in obj else 1.0
            if cfg["distill_target"] == "patch":  # view 1 sits on musicnn's patches
                t, out = torch.as_tensor(t1), e1
            else:
                t = torch.as_tensor(np.concatenate([tags[r1], tags[r2]]), dtype=torch.float32)
                out = e
            has = ~torch.isnan(t[:, 0])  # tracks without tags (yet) are left out
            if has.any():
                pred = heads["tags"](out[has])
                if cfg["distill_layer"] == "taggram":
                    term = F.binary_cross_entropy_with_logits(pred, t[has])
                else:
                    term = F.mse_loss(pred, t[has])
                loss = loss + w * term
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 50 == 0:
            print(
                f"  step {step + 1}/{cfg['steps']} loss {loss.item():.3f} "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    return enc.eval(), time.perf_counter() - t0


def _musicnn_front(n_mels, n_filters, stride=1):
    """A front-end in the style of musicnn (Pons & Serra 2019): 2-D "timbral" filters
    spanning 70 % and 40 % of the mel bands (7 frames wide, placed every ``stride``
    bands), max-pooled over frequency, so a timbre is found at any pitch; and 1-D
    "temporal" filters of 32, 64 and 128 frames on the band-averaged spectrogram.
    Maps (batch, n_mels, T) to (batch, 5 * n_filters, T)."""
    import torch
    from torch import nn

    class Front(nn.Module):
        def __init__(self):
            super().__init__()
            self.timbral = nn.ModuleList(
                nn.Sequential(
                    nn.Conv2d(1, n_filters, (int(h * n_mels), 7), (stride, 1), (0, 3), bias=False),
                    nn.BatchNorm2d(n_filters),
                    nn.ReLU(),
                )
                for h in (0.7, 0.4)
            )
            self.temporal = nn.ModuleList(
                nn.Sequential(
                    nn.Conv1d(1, n_filters, w, padding=w // 2, bias=False),
                    nn.BatchNorm1d(n_filters),
                    nn.ReLU(),
                )
                for w in (32, 64, 128)
            )

        def forward(self, x):
            t = x.shape[2]
            out = [b(x[:, None]).amax(dim=2) for b in self.timbral]
            m = x.mean(dim=1, keepdim=True)
            out += [b(m)[:, :, :t] for b in self.temporal]
            return torch.cat(out, dim=1)

    return Front()


def embed_clips(enc, mel, mean, scale, patch_frames, batch=256):
    """Mean of the patch embeddings (patches every patch_frames // 2 frames) per clip,
    and mean of the pooled conv features (the input of the fully connected layers)."""
    import torch

    hop = patch_frames // 2
    n_frames = mel.shape[2]
    offs = list(range(0, n_frames - patch_frames + 1, hop))
    if offs[-1] + patch_frames < n_frames:
        offs.append(n_frames - patch_frames)
    out, pooled = [], []
    with torch.no_grad():
        for r in range(len(mel)):
            x = (mel[r].astype(np.float32) - mean[:, None]) / scale[:, None]
            p = torch.from_numpy(np.stack([x[:, o : o + patch_frames] for o in offs]))
            h = enc.pool(enc.conv(enc.input_norm(p)))
            pooled.append(h.mean(dim=0).numpy())
            out.append(enc.fc(h).mean(dim=0).numpy())
    return np.array(out), np.array(pooled)


def score(emb, dev):
    from sklearn_music.metrics import retrieval_report

    return retrieval_report(emb, dev["album"], groups=dev["track"], k=(1, 10))


def baselines(dev):
    from sklearn.preprocessing import StandardScaler

    mel = dev["mel"]
    stats = np.concatenate([mel.mean(axis=2), mel.std(axis=2)], axis=1)
    out = {
        "mfcc": score(StandardScaler().fit_transform(dev["mfcc"]), dev),
        "melstats": score(StandardScaler().fit_transform(stats), dev),
    }
    # musicnn (MSD) features of the same clips, from the shared cache when present
    for layer, values in _musicnn_dev(dev).items():
        out[f"musicnn {layer}"] = score(values, dev)
        out[f"musicnn {layer} (std)"] = score(StandardScaler().fit_transform(values), dev)
    return out


def _musicnn_dev(dev):
    """musicnn's pooled layers of the dev clips from the shared cache ({} without it);
    raises ValueError unless its rows are the clips of the dev cache, in order."""
    path = _data("shared_feats/musicnn_dev.npz")
    if not path.exists():
        return {}
    with np.load(path) as z:
        rel = ["/".join(Path(f).parts[-2:]) for f in dev["files"]]
        if list(z["files"]) != rel or not np.allclose(z["offset"], dev["offset"]):
            raise ValueError(f"{path}: not the clips of the dev cache")
        return {
            layer: z[layer].astype(np.float64)
            for layer in ("taggram", "penultimate", "mean_pool", "max_pool")
        }


def _overrides(pairs):
    """``KEY=VALUE`` strings as settings (values read as JSON, else as strings)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in DEFAULTS:
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE with KEY in {sorted(DEFAULTS)}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run(name, overrides=None):
    import torch

    overrides = overrides or {}
    settings = EXPERIMENTS[name] | overrides
    cfg = DEFAULTS | settings
    if overrides:  # a variant of an experiment: its own name in the results and files
        name = name + "+" + ",".join(f"{k}={v}" for k, v in sorted(overrides.items()))
    torch.set_num_threads(cfg["threads"])
    dev = _load("dev")
    if cfg["train_clips"] == "real":  # bench_real's cache of the wide set (up to 6 clips)
        with np.load(_data("shared_feats/mel_wide.npz"), allow_pickle=False) as z:
            wide = {k: z[k] for k in ("mel", "album", "track", "files")}
    else:
        wide = _load("wide")
    wide["mean"], wide["scale"] = _band_stats(wide["mel"])
    wide["tracks"] = np.unique(wide["track"])
    wide["rows_of"] = {t: np.flatnonzero(wide["track"] == t) for t in wide["tracks"]}
    tags = None
    if "distill" in cfg["objective"]:
        if cfg["distill_target"] == "patch":
            width = load_patch_targets(
                wide, cfg["distill_layer"], _data(cfg["patch_file"]), cfg["patch_frames"]
            )
            tags = np.zeros((1, width), dtype=np.float32)  # only its width is used
        else:
            tags = load_tags(wide, cfg["distill_layer"])
    enc, seconds = train(cfg, wide, tags)
    t0 = time.perf_counter()
    emb, pooled = embed_clips(enc, dev["mel"], wide["mean"], wide["scale"], cfg["patch_frames"])
    res = score(emb, dev)
    row = {"name": name, "settings": settings, "train_min": seconds / 60}
    row |= {"embed_s": time.perf_counter() - t0, **res}
    row["pooled"] = score(pooled, dev)
    torch.save(
        {"state_dict": enc.state_dict(), "mean": wide["mean"], "scale": wide["scale"]},
        _checkpoint(name),
    )
    print(json.dumps(row), flush=True)
    with open(_cache() / "results.jsonl", "a") as fh:
        fh.write(json.dumps(row) + "\n")
    return enc, wide


def load_tags(wide, layer="taggram", path=None):
    """musicnn's ``layer`` for every wide clip: the mean over the clips of its track in
    the shared musicnn cache (whose clips differ from ours), so that every patch of a
    track regresses its track's target. ``taggram`` stays probabilities (the target of
    a binary cross-entropy); the other layers are standardised per dimension over the
    tracks (the target of a mean squared error)."""
    path = _data("shared_feats/musicnn_wide.npz") if path is None else Path(path)
    with np.load(path) as z:
        files, values = z["files"], z[layer].astype(np.float64)
    per_track = {f: values[files == f].mean(axis=0) for f in np.unique(files)}
    if layer != "taggram":
        stacked = np.stack(list(per_track.values()))
        mu, sd = stacked.mean(axis=0), stacked.std(axis=0) + 1e-6
        per_track = {f: (v - mu) / sd for f, v in per_track.items()}
    rel = ["/".join(Path(f).parts[-2:]) for f in wide["files"]]
    missing = sorted({f for f in rel if f not in per_track})
    if missing:  # the shared cache is still being written: those rows are NaN
        print(f"{path}: no musicnn {layer} yet for {len(missing)} of {len(set(rel))} tracks")
    nan = np.full(values.shape[1], np.nan)
    return np.stack([per_track.get(f, nan) for f in rel]).astype(np.float32)


def eval_weights(path):
    """Dev scores of a model file written by scripts/train_pretrained.py."""
    import torch

    from sklearn_music.pretrained import _embedder_from_payload

    est = _embedder_from_payload(torch.load(path, weights_only=True, map_location="cpu"))
    est.set_params(n_jobs=1)
    dev = _load("dev")
    t0 = time.perf_counter()
    emb = np.concatenate(
        [est.transform(dev["mel"][i : i + 32]) for i in range(0, len(dev["mel"]), 32)]
    )
    row = {"name": f"pretrained {Path(path).name}", "embed_s": time.perf_counter() - t0}
    row |= score(emb, dev)
    print(json.dumps(row), flush=True)
    with open(_cache() / "results.jsonl", "a") as fh:
        fh.write(json.dumps(row) + "\n")


def _encoder_from_checkpoint(path):
    """The PatchEncoder of a research checkpoint (``run``'s ``.pt``) and its band stats."""
    import torch

    from sklearn_music._modules import PatchEncoder

    ck = torch.load(path, weights_only=False, map_location="cpu")
    sd = ck["state_dict"]
    if "input_norm.weight" not in sd:
        raise SystemExit(f"{path}: a run with a front-end; only plain encoders are read back")
    conv = [v for k, v in sd.items() if k.startswith("conv.") and v.ndim == 3]
    fc = [v for k, v in sd.items() if k.startswith("fc.") and k.endswith(".weight")]
    enc = PatchEncoder(
        sd["input_norm.weight"].shape[0],
        n_filters=[w.shape[0] for w in conv],
        n_conv=len(conv),
        hidden_units=[w.shape[0] for w in fc[:-1]],
        embedding_dim=fc[-1].shape[0],
    )
    enc.load_state_dict(sd)
    return enc.eval(), ck["mean"], ck["scale"]


def _layer_stats(enc, mel, mean, scale, batch=32):
    """Mean and standard deviation over time of every conv block's output (after its
    ReLU, before its max-pool) on whole clips, one (n_clips, 2 * filters) array each."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(mel), batch):
            x = (mel[i : i + batch].astype(np.float32) - mean[:, None]) / scale[:, None]
            h, stats = enc.input_norm(torch.from_numpy(x)), []
            for m in enc.conv:
                h = m(h)
                if isinstance(m, torch.nn.ReLU):
                    stats.append(torch.cat([h.mean(dim=2), h.std(dim=2)], dim=1).numpy())
            out.append(stats)
    return [np.concatenate(layer) for layer in zip(*out)]


def probe(model="soundtracks-v1", ensemble=()):
    """What a trained model's features give without further training, on ``dev``.

    Rows (each scored like ``run``): the embeddings of ``model`` (a shipped model) raw,
    centred, standardised and PCA-whitened (32 components) on the dev clips themselves
    (unsupervised adaptation to the test catalogue: no labels), with MFCC statistics
    and musicnn's mean-pooled layer under the same treatments; the mean / standard
    deviation over time of each conv block of the model, and of the same network with
    new random conv weights (its batch-norm statistics kept); the concatenation of the
    L2-normalised embeddings of the research checkpoints ``ensemble`` (``run`` names,
    files in the cache), each alone and all together.
    """
    import torch
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from sklearn_music._pretrained_weights import read_payload
    from sklearn_music.pretrained import _embedder_from_payload

    torch.set_num_threads(DEFAULTS["threads"])
    dev = _load("dev")
    est = _embedder_from_payload(read_payload(model))
    enc = est.net_.module_.encoder.eval()
    rows = []

    def add(name, emb):
        rows.append({"name": f"probe {name}", "dim": int(emb.shape[1]), **score(emb, dev)})
        r = rows[-1]
        print(
            f"{name:<48} P@1 {r['P@1']:.3f}  P@10 {r['P@10']:.3f}  mAP {r['mAP']:.3f}", flush=True
        )

    emb, _ = embed_clips(enc, dev["mel"], est.mean_, est.scale_, est.patch_frames)
    treatments = {
        "raw": lambda E: E,
        "centred on dev": lambda E: E - E.mean(axis=0),
        "standardised on dev": lambda E: StandardScaler().fit_transform(E),
        "PCA-whitened on dev (32)": lambda E: PCA(32, whiten=True, random_state=0).fit_transform(E),
    }
    features = {model: emb, "MFCC statistics": dev["mfcc"]}
    musicnn = _musicnn_dev(dev)
    if musicnn:
        features["musicnn mean_pool"] = musicnn["mean_pool"]
    for what, E in features.items():
        for how, f in treatments.items():
            add(f"{what}, {how}", f(E))

    random_enc = _encoder_copy_with_random_convs(enc)
    for what, e in ((model, enc), ("random conv weights", random_enc)):
        layers = _layer_stats(e, dev["mel"], est.mean_, est.scale_)
        for i, v in enumerate(layers):
            half = v.shape[1] // 2
            add(f"{what}, block {i + 1} mean", StandardScaler().fit_transform(v[:, :half]))
            add(f"{what}, block {i + 1} mean+std", StandardScaler().fit_transform(v))
        add(f"{what}, all blocks mean+std", StandardScaler().fit_transform(np.hstack(layers)))

    if ensemble:
        parts = []
        for name in ensemble:
            e, mean, scale = _encoder_from_checkpoint(_checkpoint(name))
            E, _ = embed_clips(e, dev["mel"], mean, scale, DEFAULTS["patch_frames"])
            add(name, E)
            parts.append(E / np.linalg.norm(E, axis=1, keepdims=True))
        add(f"ensemble of {len(parts)}", np.hstack(parts))
    with open(_cache() / "results.jsonl", "a") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    return rows


def _encoder_copy_with_random_convs(enc, seed=0):
    """A copy of ``enc`` whose conv weights are drawn anew (He init, ``seed``)."""
    import copy

    import torch

    from sklearn_music._modules import he_init_convs

    torch.manual_seed(seed)
    return he_init_convs(copy.deepcopy(enc)).eval()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("which", choices=["dev", "wide"])
    p = sub.add_parser("run")
    p.add_argument("names", nargs="+", choices=sorted(EXPERIMENTS))
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="override settings")
    sub.add_parser("baselines")
    p = sub.add_parser("eval-weights")
    p.add_argument("path")
    p = sub.add_parser("probe", help=probe.__doc__.split("\n\n")[0])
    p.add_argument("--model", default="soundtracks-v1")
    p.add_argument("--ensemble", nargs="+", default=[], metavar="RUN")
    args = parser.parse_args(argv)
    if args.cmd == "prepare":
        if args.which == "dev":
            prepare("dev", _data("dev"), DEV_CLIPS)
        else:
            prepare("wide", _data("wide"), WIDE_CLIPS, dtype=np.float16)
    elif args.cmd == "eval-weights":
        eval_weights(args.path)
    elif args.cmd == "probe":
        probe(args.model, args.ensemble)
    elif args.cmd == "baselines":
        print(json.dumps(baselines(_load("dev"))))
    else:
        for name in args.names:
            run(name, _overrides(args.set))


if __name__ == "__main__":
    main()
