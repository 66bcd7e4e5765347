"""The main job on built-in data: what ``make demo`` and ``sklearn-music demo`` run.

It synthesises a small music collection and runs the whole chain that the package
offers: spectrograms, an MFCC-statistics baseline, the CNN embedder trained on genre,
nearest tracks with retrieval metrics against the baseline, recommendations from a
listening history, latent factors from simulated listening data with a cold-start
evaluation, and the precomputed similarity store.
"""

import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["run_demo"]


def _section(title):
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)), flush=True)


def _table(rows, header):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))


def _built_in_music(*, n_tracks, duration, random_state):
    """Section 1: synthesise the tracks, cut them into clips, split by track."""
    from sklearn.model_selection import GroupShuffleSplit
    from sklearn.utils import Bunch

    from sklearn_music.datasets import make_tracks

    _section("1. Built-in music")
    tracks = make_tracks(n_tracks=n_tracks, duration=duration, random_state=random_state)
    half = tracks.data.shape[1] // 2
    X = np.concatenate([tracks.data[:, :half], tracks.data[:, half : 2 * half]])
    y = np.concatenate([tracks.genre, tracks.genre])
    groups = np.concatenate([np.arange(n_tracks), np.arange(n_tracks)])
    clip_ids = np.array([f"track{g:03d}{'ab'[i // n_tracks]}" for i, g in enumerate(groups)])
    print(
        f"{n_tracks} synthetic tracks of {duration:g} s at {tracks.sr} Hz: "
        f"{len(tracks.genre_names)} genres ({', '.join(tracks.genre_names)}), "
        f"{len(tracks.artist_names)} artists; cut into {len(X)} clips of "
        f"{half / tracks.sr:g} s"
    )
    train, test = next(
        GroupShuffleSplit(n_splits=1, test_size=0.5, random_state=random_state).split(X, y, groups)
    )
    print(
        f"{len(train)} clips for training, {len(test)} held out "
        "(the two clips of a track stay together)"
    )
    return Bunch(tracks=tracks, X=X, y=y, groups=groups, clip_ids=clip_ids, train=train, test=test)


def _spectrograms(data, *, verbose):
    """Section 2: log-mel spectrograms of every clip; returns the transformer and them."""
    from sklearn_music import MelSpectrogramTransformer

    _section("2. Log-mel spectrograms")
    mel = MelSpectrogramTransformer(sr=data.tracks.sr, n_mels=64, n_jobs=2, verbose=verbose)
    t0 = time.perf_counter()
    S = mel.fit_transform(data.X)
    print(f"{S.shape} float32 (clips, mel bands, frames) in {time.perf_counter() - t0:.1f} s")
    return mel, S


def _mfcc_baseline(data):
    """Section 3: retrieval metrics of standardised MFCC statistics on the held-out clips."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_music import MFCCStatistics
    from sklearn_music.metrics import retrieval_report

    _section("3. Baseline: MFCC statistics")
    mfcc = Pipeline(
        [("mfcc", MFCCStatistics(sr=data.tracks.sr, n_jobs=2)), ("scale", StandardScaler())]
    )
    F = mfcc.fit(data.X[data.train]).transform(data.X)
    test = data.test
    report = retrieval_report(F[test], data.y[test], groups=data.groups[test])
    print(f"{F.shape[1]} numbers a clip (mean and std of 20 MFCCs, std of their deltas)")
    return report


def _grid_search(data, cache_dir, *, max_epochs, random_state, verbose):
    """Section 4: grid search over the whole Pipeline; returns the best parameters."""
    from joblib import Memory
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import Pipeline

    from sklearn_music import ConvEmbedder, MelSpectrogramTransformer, NearestTracks

    _section("4. Grid search over the whole Pipeline (GroupKFold by track)")
    embedder = ConvEmbedder(
        embedding_dim=32,
        n_filters=32,
        patch_frames=48,
        max_epochs=max(1, max_epochs // 2),
        random_state=random_state,
    )
    pipe = Pipeline(
        [
            ("mel", MelSpectrogramTransformer(sr=data.tracks.sr, n_jobs=2)),
            ("embed", embedder),
            ("nn", NearestTracks(n_neighbors=10)),
        ],
        memory=Memory(cache_dir, verbose=0),
    )
    search = GridSearchCV(
        pipe,
        {"mel__n_mels": [48, 64], "embed__embedding_dim": [16, 32]},
        cv=GroupKFold(n_splits=3),
        verbose=verbose,
    )
    t0 = time.perf_counter()
    train = data.train
    search.fit(data.X[train], data.y[train], groups=data.groups[train])
    for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
        print(
            f"  n_mels={params['mel__n_mels']:<3} "
            f"embedding_dim={params['embed__embedding_dim']:<3} "
            f"cross-validated precision@10 {score:.3f}"
        )
    print(
        f"best {search.best_params_} in {time.perf_counter() - t0:.0f} s "
        "(spectrograms cached by the Pipeline's memory)"
    )
    return search.best_params_


def _train_embedder(data, mel, S, best_params, *, max_epochs, random_state, verbose):
    """Section 5: the ConvEmbedder with the best parameters; returns embeddings, metrics."""
    from sklearn_music import ConvEmbedder
    from sklearn_music.metrics import retrieval_report

    _section("5. ConvEmbedder with the best parameters, trained on genre")
    best_mel = best_params["mel__n_mels"]
    if best_mel != mel.n_mels:  # section 2's spectrograms serve when they match
        S = mel.set_params(n_mels=best_mel).fit_transform(data.X)
    embedder = ConvEmbedder(
        embedding_dim=best_params["embed__embedding_dim"],
        n_filters=32,
        patch_frames=48,
        max_epochs=max_epochs,
        random_state=random_state,
        verbose=verbose,
    )
    train, test, y = data.train, data.test, data.y
    t0 = time.perf_counter()
    embedder.fit(S[train], y[train])
    history = embedder.net_.history
    print(
        f"{max_epochs} epochs in {time.perf_counter() - t0:.1f} s, training loss "
        f"{history[0, 'train_loss']:.3f} -> {history[-1, 'train_loss']:.3f}"
    )
    E = embedder.transform(S)
    report = retrieval_report(E[test], y[test], groups=data.groups[test])
    accuracy = np.mean(embedder.predict(S[test]) == y[test])
    chance = 1 / len(data.tracks.genre_names)
    print(f"held-out genre accuracy {accuracy:.2f} (chance {chance:.2f})")
    return E, report


def _retrieval_table(results):
    """Section 6: the baseline's and the embedding's retrieval metrics side by side."""
    _section("6. Genre retrieval among held-out clips (own track excluded, cosine)")
    metrics = list(results["cnn"])
    _table(
        [
            [name, *(f"{results[key][m]:.3f}" for m in metrics)]
            for name, key in [("MFCC statistics", "mfcc"), ("ConvEmbedder", "cnn")]
        ],
        ["method", *metrics],
    )


def _nearest_tracks(data, E, *, random_state):
    """Section 7: neighbours and recommendations of a held-out clip; returns its index."""
    from sklearn_music import NearestTracks

    _section("7. Nearest tracks and recommendations")
    y, groups, clip_ids, artist = data.y, data.groups, data.clip_ids, data.tracks.artist
    nn = NearestTracks(n_neighbors=5, random_state=random_state)
    nn.fit(E, y, track_ids=clip_ids)
    query = data.test[0]
    distances, indices = nn.kneighbors(E[[query]], n_neighbors=7)
    print(f"clips like {clip_ids[query]} ({y[query]}, {artist[groups[query]]}):")
    shown = [(d, i) for d, i in zip(distances[0], indices[0]) if groups[i] != groups[query]][:5]
    for d, i in shown:
        print(f"  {clip_ids[i]}  {y[i]:<8} {artist[groups[i]]:<16} cosine distance {d:.3f}")
    test = data.test
    history_ids = [str(c) for c in clip_ids[test][y[test] == y[query]][:3]]
    print(f"recommendations for a listener of {history_ids} ({y[query]}):")
    for clip_id, score in nn.recommend(history_ids, n=5)[0]:
        i = int(np.flatnonzero(clip_ids == clip_id)[0])
        print(f"  {clip_id}  {y[i]:<8} score {score:.3f}")
    return query


def _cold_start(tracks, *, max_epochs, random_state):
    """Section 8: factors from simulated listening, predicted from audio; returns scores."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_music import (
        ConvEmbedder,
        ImplicitFactors,
        MelSpectrogramTransformer,
        MFCCStatistics,
    )
    from sklearn_music.coldstart import cold_start_split, evaluate_cold_start
    from sklearn_music.datasets import make_listening

    _section("8. Cold start: latent factors from listening data, predicted from audio")
    listening = make_listening(tracks, n_users=500, random_state=random_state)
    train_plays, test_plays, warm, cold, kept = cold_start_split(
        listening.plays, test_size=0.25, random_state=random_state
    )
    params = dict(n_factors=16, normalize_items=True, random_state=random_state)
    factors = ImplicitFactors(**params).fit(train_plays)
    full = ImplicitFactors(**params).fit(listening.plays[kept])
    print(
        f"{len(kept)} simulated listeners, {listening.plays.nnz} (user, track) "
        f"pairs; {len(cold)} tracks held out with none of their plays seen"
    )
    target = factors.item_factors_.astype(np.float64)
    mel = MelSpectrogramTransformer(sr=tracks.sr, n_mels=64, n_jobs=2)
    S_tracks = mel.fit_transform(tracks.data)
    regressor = ConvEmbedder(
        embedding_dim=32,
        patch_frames=64,
        n_filters=32,
        hidden_units=(128,),
        pooling=("mean", "max"),
        weight_decay=1e-3,
        max_epochs=2 * max_epochs,
        random_state=random_state,
    ).fit(S_tracks[warm], target)
    features = MFCCStatistics(sr=tracks.sr, n_jobs=2).fit_transform(tracks.data)
    ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 12)))
    ridge.fit(features[warm], target)
    rng = np.random.default_rng(random_state)
    users = factors.user_factors_
    candidates = {
        "true factors (upper bound)": (full.user_factors_, full.item_factors_[cold]),
        "CNN, predicted from audio": (users, regressor.predict(S_tracks[cold])),
        "MFCC statistics + ridge": (users, ridge.predict(features[cold])),
        "random": (users, rng.standard_normal((len(cold), target.shape[1]))),
    }
    scores = {name: evaluate_cold_start(u, v, test_plays) for name, (u, v) in candidates.items()}
    _table(
        [[name, f"{s['map_at_k']:.3f}", f"{s['auc']:.3f}"] for name, s in scores.items()],
        ["held-out tracks ranked per user", "mAP@500", "AUC"],
    )
    return scores


def _similarity_store(clip_ids, E, query, folder):
    """Section 9: build the SQLite similarity store and time its lookups."""
    from sklearn_music.store import SimilarityStore

    _section("9. Similarity store")
    path = Path(folder) / "tracks.db"
    t0 = time.perf_counter()
    SimilarityStore.build(path, E, clip_ids, n_neighbors=10)
    print(
        f"{len(E)} clips with their 10 most similar written to an SQLite store in "
        f"{time.perf_counter() - t0:.2f} s"
    )
    with SimilarityStore(path) as store:
        similar = store.similar(str(clip_ids[query]), k=3)
        print(
            f"store.similar({str(clip_ids[query])!r}, k=3) -> "
            + ", ".join(f"{t} ({s:.3f})" for t, s in similar)
        )
        lookups = [str(c) for c in clip_ids] * 10
        t0 = time.perf_counter()
        for clip_id in lookups:
            store.similar(clip_id, k=10)
        per = (time.perf_counter() - t0) / len(lookups)
        print(f"{per * 1e6:.1f} µs a lookup on average ({len(lookups)} lookups)")


def run_demo(*, n_tracks=320, duration=6.0, max_epochs=20, random_state=0, verbose=0):
    """Run the similarity chain on synthetic music and print what it finds.

    Every synthetic track is cut into two clips; the clips are the samples and the
    track is their group, so that the clips of a track always fall on the same side
    of a split.

    Parameters
    ----------
    n_tracks : int, default=320
        Number of synthetic tracks (4 genres, 3 artists per genre).

    duration : float, default=6.0
        Length of every track in seconds (two clips of half that length).

    max_epochs : int, default=20
        Training epochs of the embedders (the grid search uses half as many).

    random_state : int, default=0
        Seed of the data, the splits and the networks.

    verbose : int, default=0
        Progress output of the steps (progress bars, skorch's epoch table).

    Returns
    -------
    results : dict
        The retrieval metrics of the baseline and of the learned embedding on the
        held-out clips, under the keys ``"mfcc"`` and ``"cnn"``, the grid search's
        best parameters under ``"best_params"``, and the cold-start scores under
        ``"coldstart"``.

    Examples
    --------
    >>> from sklearn_music._demo import run_demo
    >>> results = run_demo(n_tracks=24, duration=3.0, max_epochs=1)  # doctest: +SKIP
    """
    start = time.perf_counter()
    fit = dict(max_epochs=max_epochs, random_state=random_state)  # every section that trains
    results = {}
    with tempfile.TemporaryDirectory(prefix="sklearn_music_demo_") as workdir:
        data = _built_in_music(n_tracks=n_tracks, duration=duration, random_state=random_state)
        mel, S = _spectrograms(data, verbose=verbose)
        results["mfcc"] = _mfcc_baseline(data)
        results["best_params"] = _grid_search(data, workdir, verbose=verbose, **fit)
        E, results["cnn"] = _train_embedder(
            data, mel, S, results["best_params"], verbose=verbose, **fit
        )
        _retrieval_table(results)
        query = _nearest_tracks(data, E, random_state=random_state)
        results["coldstart"] = _cold_start(data.tracks, **fit)
        _similarity_store(data.clip_ids, E, query, workdir)
    print(f"\nDone in {time.perf_counter() - start:.0f} s.")
    return results
