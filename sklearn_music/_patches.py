"""The data ConvEmbedder trains on: patch datasets, collate function, track split.

Ragged spectrograms are checked and targets packed into a float matrix
(:func:`_ragged_spectrograms`, :func:`_encode_targets`); :class:`_TrackData` holds
both; :class:`_RandomPatches`, :class:`_RandomPairs` (contrastive training) and
:class:`_FixedPatches` cut them into patches as plain
map-style datasets (torch's ``DataLoader`` needs only ``__len__`` and
``__getitem__``); :class:`_TrackSplit` is a skorch ``train_split`` callable. Nothing
here is an estimator, skorch is not imported and torch only inside
:func:`_collate_sequences`.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .utils._checks import check_one_kind


def _is_ragged_sequence(X):
    """True for a list / tuple / 1-D object array whose items are all 2-D arrays."""
    if isinstance(X, np.ndarray):
        if X.dtype != object or X.ndim != 1:
            return False
    elif not isinstance(X, (list, tuple)):
        return False
    if len(X) == 0:
        raise ValueError(
            "X is empty: ConvEmbedder needs at least one track (a 3-D array or a list "
            "of (n_mels, n_frames) spectrograms)"
        )
    ndims = [getattr(x, "ndim", None) for x in X]
    if 2 in ndims and any(d != 2 for d in ndims):
        i = next(i for i, d in enumerate(ndims) if d != 2)
        shape = getattr(X[i], "shape", type(X[i]).__name__)
        raise ValueError(
            f"X[{i}] is {shape} but X[{ndims.index(2)}] is a 2-D spectrogram; every item "
            "of a list X must be a 2-D (n_mels, n_frames) array"
        )
    return 2 in ndims


def _ragged_spectrograms(X):
    """``X`` as a list of float32 ``(n_mels, n_frames_i)`` arrays when it is a
    sequence of 2-D arrays (checked: real, finite, non-empty, one ``n_mels``);
    None for any other form of ``X``."""
    if not _is_ragged_sequence(X):
        return None
    specs = []
    for i, x in enumerate(X):
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
            raise ValueError(f"X[{i}] has dtype {x.dtype}; a spectrogram must be real numbers")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(
                f"X[{i}] has shape {x.shape}; a spectrogram needs at least one "
                "mel band and one frame"
            )
        if not np.isfinite(x).all():
            raise ValueError(f"X[{i}] contains NaN or infinity")
        if specs and x.shape[0] != specs[0].shape[0]:
            raise ValueError(
                f"X[{i}] has {x.shape[0]} mel bands but X[0] has "
                f"{specs[0].shape[0]}; every spectrogram needs the same n_mels"
            )
        specs.append(x)
    return specs


def _crop(spec, offset, n_frames, pad_mode):
    """``n_frames`` frames of ``spec`` from ``offset``; short tracks are padded."""
    length = spec.shape[1]
    if length >= n_frames:
        return spec[:, offset : offset + n_frames]
    if pad_mode == "wrap":
        return spec[:, np.arange(n_frames) % length]
    out = np.zeros((spec.shape[0], n_frames), dtype=spec.dtype)
    out[:, :length] = spec
    return out


def _fixed_offsets(length, n_frames, hop):
    """Offsets of the patches taken every ``hop`` frames, the last one ending the track."""
    if length <= n_frames:
        return [0]
    offsets = list(range(0, length - n_frames + 1, hop))
    if offsets[-1] + n_frames < length:
        offsets.append(length - n_frames)
    return offsets


def _track_windows(spec, n_frames, pad_mode):
    """Every window of ``n_frames`` frames of ``spec``, a strided ``(n_windows,
    n_mels, n_frames)`` view (window ``o`` starts at frame ``o``); a track shorter than
    a patch gives its one padded patch (:func:`_crop`)."""
    if spec.shape[1] < n_frames:
        return _crop(spec, 0, n_frames, pad_mode)[None]
    n_mels, length = spec.shape
    s_mel, s_frame = spec.strides
    # sliding_window_view(spec, n_frames, axis=1).transpose(1, 0, 2), without its checks
    return as_strided(
        spec,
        shape=(length - n_frames + 1, n_mels, n_frames),
        strides=(s_frame, s_mel, s_frame),
        writeable=False,
    )


def _copy_windows(windows, offsets, out):
    """Copy ``windows[offsets]`` into ``out`` through strided slices, not a gather.

    ``offsets`` are :func:`_fixed_offsets`: every step is the hop but maybe the last
    (shorter), so all but the last offset form one slice.
    """
    n = len(offsets)
    if n > 1:
        step = int(offsets[1] - offsets[0])
        stop = int(offsets[n - 2]) + 1
        out[: n - 1] = windows[int(offsets[0]) : stop : step]
    out[n - 1] = windows[int(offsets[n - 1])]


def _patch_batches(specs, *, n_frames, hop, pad_mode, batch_size):
    """The patches of :class:`_FixedPatches` (``aggregate="mean"``), in its order,
    stacked in float32 batches of ``batch_size`` (the last one shorter).

    Each patch is copied once, from a strided view of its track into a batch buffer;
    the buffer is reused, so a batch is valid until the next one is asked for.
    """
    n_mels = specs[0].shape[0]
    buf = np.empty((batch_size, n_mels, n_frames), dtype=np.float32)
    fill = 0
    for spec in specs:
        windows = _track_windows(spec, n_frames, pad_mode)
        offsets = _fixed_offsets(spec.shape[1], n_frames, hop)
        done = 0
        while done < len(offsets):
            take = min(batch_size - fill, len(offsets) - done)
            _copy_windows(windows, offsets[done : done + take], buf[fill : fill + take])
            fill += take
            done += take
            if fill == batch_size:
                yield buf
                fill = 0
    if fill:
        yield buf[:fill]


# --------------------------------------------------------------------------------------
# Datasets (plain map-style datasets: torch's DataLoader needs only __len__/__getitem__)
# --------------------------------------------------------------------------------------
class _TrackData:
    """Normalised spectrograms of the tracks and their packed targets (or None)."""

    def __init__(self, specs, Y=None):
        self.specs = specs
        self.Y = Y

    def __len__(self):
        return len(self.specs)

    def subset(self, indices):
        return _TrackData(
            [self.specs[i] for i in indices], None if self.Y is None else self.Y[indices]
        )

    def target(self, i):
        if self.Y is None:
            return np.zeros(1, dtype=np.float32)
        return self.Y[i]


class _RandomPatches:
    """Training examples: ``patches_per_track`` random patches (or patch sequences)
    of every track; each access draws a new position, so each epoch sees new patches.
    """

    def __init__(
        self, tracks, *, n_frames, hop, per_track, pad_mode, sequence_length, aggregate, rng
    ):
        self.tracks = tracks
        self.n_frames = n_frames
        self.hop = hop
        self.per_track = per_track
        self.pad_mode = pad_mode
        self.sequence_length = sequence_length
        self.aggregate = aggregate
        self.rng = rng

    def __len__(self):
        return len(self.tracks) * self.per_track

    def __getitem__(self, k):
        i = k % len(self.tracks)
        spec = self.tracks.specs[i]
        length = spec.shape[1]
        y = self.tracks.target(i)
        if self.aggregate == "mean":
            offset = int(self.rng.integers(0, max(1, length - self.n_frames + 1)))
            return _crop(spec, offset, self.n_frames, self.pad_mode), y
        # a run of `sequence_length` hop-spaced patches from a random start
        span = self.n_frames + (self.sequence_length - 1) * self.hop
        start = int(self.rng.integers(0, max(1, length - span + 1)))
        offsets = [
            o
            for o in range(start, start + span - self.n_frames + 1, self.hop)
            if o + self.n_frames <= length
        ] or [start]
        seq = np.zeros((self.sequence_length, spec.shape[0], self.n_frames), np.float32)
        for j, o in enumerate(offsets):
            seq[j] = _crop(spec, o, self.n_frames, self.pad_mode)
        return {"x": seq, "lengths": np.int64(len(offsets))}, y


class _RandomPairs:
    """Contrastive training examples: two independent random patches of a track.

    An item is ``({"x": patch, "x2": other_patch}, y)``; ``patches_per_track`` items
    per track and epoch, new positions at every access.
    """

    def __init__(self, tracks, *, n_frames, per_track, pad_mode, rng):
        self.tracks = tracks
        self.n_frames = n_frames
        self.per_track = per_track
        self.pad_mode = pad_mode
        self.rng = rng

    def __len__(self):
        return len(self.tracks) * self.per_track

    def __getitem__(self, k):
        i = k % len(self.tracks)
        spec = self.tracks.specs[i]
        high = max(1, spec.shape[1] - self.n_frames + 1)
        a, b = (int(o) for o in self.rng.integers(0, high, size=2))
        x = _crop(spec, a, self.n_frames, self.pad_mode)
        x2 = _crop(spec, b, self.n_frames, self.pad_mode)
        return {"x": x, "x2": x2}, self.tracks.target(i)


class _FixedPatches:
    """Evaluation examples: every track cut into patches every ``hop`` frames.

    With ``aggregate="mean"`` an item is one patch (the estimator averages each
    track's patches afterwards); with ``"gru"`` an item is the whole sequence of
    patches of one track.
    """

    def __init__(self, tracks, *, n_frames, hop, pad_mode, aggregate):
        self.tracks = tracks
        self.n_frames = n_frames
        self.pad_mode = pad_mode
        self.aggregate = aggregate
        self.offsets = [_fixed_offsets(s.shape[1], n_frames, hop) for s in tracks.specs]
        self.items = [(i, o) for i, offs in enumerate(self.offsets) for o in offs]

    def __len__(self):
        return len(self.items) if self.aggregate == "mean" else len(self.tracks)

    def __getitem__(self, k):
        if self.aggregate == "mean":
            i, o = self.items[k]
            spec = self.tracks.specs[i]
            return _crop(spec, o, self.n_frames, self.pad_mode), self.tracks.target(i)
        spec = self.tracks.specs[k]
        seq = np.stack([_crop(spec, o, self.n_frames, self.pad_mode) for o in self.offsets[k]])
        return {"x": seq, "lengths": np.int64(len(seq))}, self.tracks.target(k)


def _collate_sequences(batch):
    """Stack patch sequences of different lengths, padding with zero patches."""
    import torch

    n_steps = max(int(x["lengths"]) for x, _ in batch)
    shape = batch[0][0]["x"].shape[1:]
    xs = np.zeros((len(batch), n_steps, *shape), dtype=np.float32)
    for j, (x, _) in enumerate(batch):
        xs[j, : len(x["x"])] = x["x"]
    lengths = torch.tensor([int(x["lengths"]) for x, _ in batch])
    ys = torch.as_tensor(np.stack([y for _, y in batch]))
    return {"x": torch.from_numpy(xs), "lengths": lengths}, ys


class _TrackSplit:
    """skorch ``train_split``: hold out a fraction of the *tracks* (so no patch of a
    validation track is trained on), stratified by the first classification target.
    """

    def __init__(self, fraction, stratify_column, random_state):
        self.fraction = fraction
        self.stratify_column = stratify_column
        self.random_state = random_state

    def __call__(self, dataset, y=None, **fit_params):
        from sklearn.model_selection import train_test_split

        idx = np.arange(len(dataset))
        strat = None
        if self.stratify_column is not None:
            strat = dataset.Y[:, self.stratify_column]
            if np.unique(strat, return_counts=True)[1].min() < 2:
                strat = None
        try:
            train, valid = train_test_split(
                idx,
                test_size=self.fraction,
                stratify=strat,
                random_state=self.random_state,
            )
        except ValueError:  # too few tracks per class for a stratified split
            train, valid = train_test_split(
                idx, test_size=self.fraction, random_state=self.random_state
            )
        return dataset.subset(np.sort(train)), dataset.subset(np.sort(valid))


def _encode_targets(y, n_samples, target_weights):
    """Pack the targets into a float matrix; describe them in a list of dicts.

    ``y`` is one target (a named pandas Series keeps its name, anything else is
    named ``"y"``), a dict or a DataFrame of targets. Each description holds the
    target's ``name``, ``kind``, ``weight`` and its ``start``/``stop`` columns in the
    matrix: class codes for a classification target, standardised columns for a
    regression target.
    """
    if y is None:
        raise ValueError("ConvEmbedder requires y to be passed, but the target y is None.")
    for name, values in y.items() if isinstance(y, dict) else [("y", y)]:
        if getattr(values, "ndim", 1) == 1 and not hasattr(values, "columns"):
            check_one_kind(values, what=name if name == "y" else f"y[{name!r}]", noun="target")
    if isinstance(y, dict):
        items = list(y.items())
    elif hasattr(y, "columns") and hasattr(y, "iloc"):  # DataFrame
        items = [(str(c), y[c].to_numpy()) for c in y.columns]
    else:
        items = [(str(getattr(y, "name", None) or "y"), y)]
    if not items:
        raise ValueError("y has no target")
    weights = dict(target_weights or {})
    unknown = set(weights) - {name for name, _ in items}
    if unknown:
        raise ValueError(
            f"target_weights names {sorted(unknown)}, which are not targets; the "
            f"targets are {[name for name, _ in items]}"
        )
    targets, columns = [], []
    start = 0
    for name, values in items:
        target, column = _encode_target(name, np.asarray(values), n_samples)
        target.update(start=start, stop=start + column.shape[1])
        target["weight"] = float(weights.get(name, 1.0))
        targets.append(target)
        columns.append(column)
        start = target["stop"]
    return targets, np.hstack(columns)


def _encode_target(name, values, n_samples):
    """Description and float32 columns of one target (class codes or standardised)."""
    from sklearn.utils.multiclass import type_of_target

    if values.shape[0] != n_samples:
        raise ValueError(f"target {name!r} has {values.shape[0]} rows but X has {n_samples} tracks")
    if values.ndim == 1 and type_of_target(values) in ("binary", "multiclass"):
        if values.dtype.kind in "fc" and not np.isfinite(values).all():
            raise ValueError(f"target {name!r} contains NaN or infinity")
        classes, codes = np.unique(values, return_inverse=True)
        target = {"name": name, "kind": "class", "classes": classes}
        return target, codes.astype(np.float32)[:, None]
    if values.ndim not in (1, 2):
        raise ValueError(
            f"target {name!r} has shape {values.shape}; expected 1-D labels "
            "or a 1-D / 2-D array of numbers"
        )
    try:
        vals = values.astype(np.float64).reshape(n_samples, -1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"target {name!r} is neither class labels nor numbers: {exc}") from None
    if not np.isfinite(vals).all():
        raise ValueError(f"target {name!r} contains NaN or infinity")
    mean, scale = vals.mean(axis=0), vals.std(axis=0)
    scale[scale == 0] = 1.0
    target = {
        "name": name,
        "kind": "regression",
        "mean": mean,
        "scale": scale,
        "ndim": values.ndim,
    }
    return target, ((vals - mean) / scale).astype(np.float32)
