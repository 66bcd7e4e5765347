"""Patch datasets, their collate function and the track split of ConvEmbedder.

Plain map-style datasets (torch's ``DataLoader`` needs only ``__len__`` and
``__getitem__``) and a skorch ``train_split`` callable: nothing here is an estimator,
skorch is not imported and torch only inside :func:`_collate_sequences`.
"""

import numpy as np


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
