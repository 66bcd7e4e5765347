"""
==========================================================
Tuning the whole similarity pipeline with a grid search
==========================================================

The three steps of content-based similarity are ordinary scikit-learn estimators, so
one :class:`~sklearn.pipeline.Pipeline` holds them all:

1. :class:`~sklearn_music.MelSpectrogramTransformer`: audio to log-mel spectrograms;
2. :class:`~sklearn_music.ConvEmbedder`: a CNN trained on a stand-in task (the genre)
   that turns a spectrogram into a track vector;
3. :class:`~sklearn_music.NearestTracks`: the tracks nearest to a query.

``NearestTracks.score`` is the precision@k of the retrieved tracks' labels, so
:class:`~sklearn.model_selection.GridSearchCV` ranks the candidate models by how
well they retrieve tracks of the query's genre. The clips of one track must never be
split between training and test (a clip would find its own track's other clip), so
the folds are a :class:`~sklearn.model_selection.GroupKFold` by track. The pipeline's
``memory`` caches the spectrograms: every candidate that shares the spectrogram
parameters reuses them instead of computing them again.
"""

# %%
# Data: 64 synthetic tracks of 4 genres, each cut into two 3-s clips. The clips are
# the samples, the track is the group.
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
from joblib import Memory
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline

from sklearn_music import ConvEmbedder, MelSpectrogramTransformer, NearestTracks
from sklearn_music.datasets import make_tracks

tracks = make_tracks(n_tracks=64, duration=6.0, random_state=0)
half = tracks.data.shape[1] // 2
X = np.concatenate([tracks.data[:, :half], tracks.data[:, half:]])  # clip a, clip b
y = np.concatenate([tracks.genre, tracks.genre])
groups = np.concatenate([np.arange(64), np.arange(64)])  # the track of each clip
print(f"{len(X)} clips of {half / tracks.sr:.0f} s from {len(tracks.data)} tracks")

# %%
# The pipeline and the grid: two spectrogram resolutions times two embedding sizes.
cache = tempfile.mkdtemp(prefix="sklearn_music_example_")
pipe = Pipeline(
    [
        ("mel", MelSpectrogramTransformer(sr=tracks.sr)),
        ("embed", ConvEmbedder(n_filters=32, patch_frames=48, max_epochs=8, random_state=0)),
        ("nn", NearestTracks(n_neighbors=5)),
    ],
    memory=Memory(cache, verbose=0),
)
grid = {"mel__n_mels": [48, 64], "embed__embedding_dim": [8, 32]}
search = GridSearchCV(pipe, grid, cv=GroupKFold(n_splits=3))
start = time.perf_counter()
search.fit(X, y, groups=groups)
print(
    f"{len(search.cv_results_['params'])} candidates x 3 folds in "
    f"{time.perf_counter() - start:.0f} s"
)
print("best:", search.best_params_, f"precision@5 {search.best_score_:.3f}")

# %%
# The cache: joblib's ``Memory`` holds one entry per step fitted on distinct data and
# parameters. The spectrograms were computed once per training set and spectrogram
# setting (3 folds x 2 settings, plus the refit of the best), not once per candidate:
# the candidates that differ only in the embedder reused them. (The embedder step is
# cached too, as every transformer step of a Pipeline with memory is.)
import collections
from pathlib import Path

import joblib

steps = collections.Counter(
    type(joblib.load(path)[1]).__name__ for path in Path(cache).rglob("output.pkl")
)
n_fits = len(search.cv_results_["params"]) * 3 + 1
print(f"{n_fits} pipeline fits; cached fits by step: {dict(steps)}")

# %%
# The candidates' cross-validated precision@5 (chance is 0.25: four equal genres).
labels = [
    f"{p['mel__n_mels']} mels\n{p['embed__embedding_dim']}-d" for p in search.cv_results_["params"]
]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.bar(
    labels,
    search.cv_results_["mean_test_score"],
    yerr=search.cv_results_["std_test_score"],
    color="tab:blue",
    capsize=4,
)
ax.axhline(0.25, color="grey", linestyle="--", label="chance")
ax.set_ylabel("precision@5 (genre)")
ax.set_title("GridSearchCV over the whole pipeline, GroupKFold by track")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# Tracks similar to this one: the refitted best pipeline embeds new clips (the
# second half of the first tracks, which it saw during the refit, stands in for
# new audio here) and the ``NearestTracks`` step returns the nearest fitted clips.
best = search.best_estimator_
query = X[[64]]  # clip b of track 0
vectors = best[:-1].transform(query)
distances, indices = best[-1].kneighbors(vectors, n_neighbors=5)
print(f"query: track 0, clip b ({y[64]}, {tracks.artist[0]})")
for d, i in zip(distances[0], indices[0]):
    t = groups[i]
    print(
        f"  track {t:2d} clip {'ab'[i // 64]}  {y[i]:<8} {tracks.artist[t]:<16} "
        f"cosine distance {d:.3f}"
    )

# %%
# A 2-D map of the learned embedding: every clip's vector projected onto its first
# two principal components, coloured by genre.
from sklearn.decomposition import PCA

E = best[:-1].transform(X)
xy = PCA(n_components=2).fit_transform(E / np.linalg.norm(E, axis=1, keepdims=True))
fig, ax = plt.subplots(figsize=(5.5, 4.5))
for genre in tracks.genre_names:
    mask = y == genre
    ax.scatter(xy[mask, 0], xy[mask, 1], s=18, label=genre)
ax.set_xlabel("PC 1")
ax.set_ylabel("PC 2")
ax.set_title("Track embeddings of the best pipeline")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# The cache directory is ours to remove.
import shutil

shutil.rmtree(cache, ignore_errors=True)
