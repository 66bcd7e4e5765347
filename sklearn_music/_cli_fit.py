"""``sklearn-music fit``: train, report a held-out retrieval score, refit on everything.

Stages (each named on stderr when progress is on, one bar at a time):

1. the spectrograms of every track (computed once, reused by every fit);
2. with labels and without ``--no-eval``: the MFCC statistics of every track, then
   for each of at most 3 folds over tracks (``StratifiedGroupKFold``, one group per
   track, so that the excerpts of one track never straddle train and test), a
   ``ConvEmbedder`` trained with the same settings on the training tracks; the
   test tracks query the training tracks (``NearestTracks``, cosine), and P@k and
   mAP@k count the retrieved tracks with the query's label -- the protocol of
   ``cross_val_score(..., scoring=make_retrieval_scorer(...))``. The MFCC
   statistics (standardised on the training tracks, cosine) are scored on the
   same folds as the reference;
3. the final model on every track, its index, and the saved file.
"""

import warnings

import numpy as np

MAX_FOLDS = 3
MIN_EVAL_TRACKS = 4


def spectrograms(files, mel, progress, batch_size=16):
    """Log-mel spectrograms of ``files`` (a list), one bar over the tracks."""
    specs = []
    with progress.bar("spectrograms", len(files), "track") as bar:
        for start in range(0, len(files), batch_size):
            batch = files[start : start + batch_size]
            out = mel.transform(batch)
            specs.extend(list(out))
            bar.update(len(batch))
    return specs


def mfcc_statistics(files, sr, duration, progress, batch_size=16):
    """The MFCC-statistics baseline's vectors of ``files``, one bar over the tracks."""
    from ._baseline import MFCCStatistics

    stats = MFCCStatistics(sr=sr, duration=duration)
    rows = []
    with progress.bar("MFCC statistics (reference)", len(files), "track") as bar:
        for start in range(0, len(files), batch_size):
            batch = files[start : start + batch_size]
            rows.append(stats.fit_transform(batch))
            bar.update(len(batch))
    return np.vstack(rows)


def train_embedder(specs, y, params, progress, desc):
    """A ConvEmbedder fitted on ``specs``; one bar over its epochs (or skorch's table)."""
    from ._cli_progress import epoch_callback
    from ._embedder import ConvEmbedder

    if params.get("verbose"):  # skorch prints its table of epochs instead of a bar
        progress.stage(desc)
        return ConvEmbedder(**params).fit(specs, y)
    with progress.bar(desc, params["max_epochs"], "epoch") as bar:
        callbacks = [("cli_progress", epoch_callback(bar))] if progress.enabled else None
        emb = ConvEmbedder(**params, callbacks=callbacks).fit(specs, y)
    emb.set_params(callbacks=None)  # no reference to the bar in the fitted model
    return emb


def _folds(y, random_state):
    """``(n_splits, splits)`` over tracks, or ``(0, reason)`` when no split is possible."""
    from sklearn.model_selection import StratifiedGroupKFold

    n = len(y)
    if n < MIN_EVAL_TRACKS:
        return 0, f"{n} tracks are too few (at least {MIN_EVAL_TRACKS})"
    n_splits = min(MAX_FOLDS, n // 2)
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    with warnings.catch_warnings():  # a label with fewer tracks than folds is fine
        warnings.simplefilter("ignore", UserWarning)
        splits = list(cv.split(np.zeros(n), y, groups=np.arange(n)))
    return n_splits, splits


def _scores(train_X, train_y, test_X, test_y, k):
    """P@k and mAP@k of test tracks querying the training tracks (cosine, exact)."""
    from ._neighbors import NearestTracks
    from .metrics import make_retrieval_scorer

    index = NearestTracks(n_neighbors=k, metric="cosine", algorithm="brute")
    index.fit(train_X, train_y)
    return (
        make_retrieval_scorer("precision", k=k)(index, test_X, test_y),
        make_retrieval_scorer("average_precision", k=k)(index, test_X, test_y),
    )


def held_out_scores(specs, mfcc, y, *, params, k, random_state, progress):
    """Per-fold (P@k, mAP@k) of the embedder and of the MFCC reference, or a reason."""
    from sklearn.preprocessing import StandardScaler

    n_splits, splits = _folds(y, random_state)
    if not n_splits:
        return None, splits
    k = min(k, min(len(train) for train, _ in splits))
    conv, ref = [], []
    for i, (train, test) in enumerate(splits, 1):
        if len(np.unique(y[train])) < 2:
            return None, f"fold {i} has a single label among its training tracks"
        emb = train_embedder(
            [specs[j] for j in train], y[train], params, progress, f"fold {i}/{n_splits}: training"
        )
        E_train = emb.transform([specs[j] for j in train])
        E_test = emb.transform([specs[j] for j in test])
        conv.append(_scores(E_train, y[train], E_test, y[test], k))
        scaler = StandardScaler().fit(mfcc[train])
        ref.append(
            _scores(
                scaler.transform(mfcc[train]), y[train], scaler.transform(mfcc[test]), y[test], k
            )
        )
    return (np.array(conv), np.array(ref), n_splits, k), None


def format_scores(result):
    """The held-out table printed by ``fit``."""
    conv, ref, n_splits, k = result
    lines = [
        f"held-out retrieval ({n_splits}-fold cross-validation over tracks: test tracks "
        "query the training tracks; relevant = same label)",
        f"  {'':<28}{'P@' + str(k):>14}{'mAP@' + str(k):>14}",
    ]
    for name, s in (("ConvEmbedder", conv), ("MFCC statistics (reference)", ref)):
        cells = "".join(f"{m:>8.3f} ± {sd:.2f}" for m, sd in zip(s.mean(0), s.std(0)))
        lines.append(f"  {name:<28}{cells}")
    return "\n".join(lines)
