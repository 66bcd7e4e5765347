"""
=================================================
Cold start: recommending tracks nobody has played
=================================================

Collaborative filtering learns a latent factor vector for every track from who played
it, so a new track, with no plays yet, cannot be recommended. Van den Oord, Dieleman
and Schrauwen (NIPS 2013) train a convolutional network to *predict* a track's latent
factors from its audio; the new track is then recommended to the users whose factors
match.

This example runs their evaluation on synthetic music and simulated listeners: hold
a quarter of the tracks out entirely, fit the factors on the plays of the others, and
rank the held-out tracks for every user with factors that are

* **true**: fitted on all plays, held-out tracks included (the upper bound);
* **random**;
* **MFCC + ridge**: a ridge regression from 60 MFCC statistics;
* **CNN**: :class:`~sklearn_music.ConvEmbedder` trained with a mean squared error on
  the training tracks' factors, from log-mel spectrograms.
"""

# %%
# Tracks and listeners
# --------------------
# :func:`~sklearn_music.datasets.make_tracks` synthesises clips of four genres with
# three artists each; :func:`~sklearn_music.datasets.make_listening` simulates users
# who like some genres and artists more than others, with a Zipf popularity and a
# little noise.
import matplotlib.pyplot as plt
import numpy as np
import torch

from sklearn_music import (
    ConvEmbedder,
    ImplicitFactors,
    MelSpectrogramTransformer,
    MFCCStatistics,
)
from sklearn_music.coldstart import cold_start_split, evaluate_cold_start
from sklearn_music.datasets import make_listening, make_tracks

torch.set_num_threads(1)
tracks = make_tracks(240, duration=3.0, random_state=0)
listening = make_listening(tracks, n_users=400, random_state=0)
print(
    f"{listening.plays.shape[0]} users, {listening.plays.shape[1]} tracks, "
    f"{listening.plays.sum()} plays"
)

# %%
# Hold tracks out, factorise the rest
# -----------------------------------
# :func:`~sklearn_music.coldstart.cold_start_split` removes whole tracks: none of
# their plays is seen by :class:`~sklearn_music.ImplicitFactors` (weighted matrix
# factorisation for implicit feedback). It also leaves out the listeners who played
# only held-out tracks (they would have no factors) and returns the rows it kept.
# Unit-length track factors (``normalize_items=True``) keep popularity out of the
# regression target.
train, test, train_tracks, test_tracks, kept_users = cold_start_split(
    listening.plays, test_size=0.25, random_state=0
)

params = dict(n_factors=16, normalize_items=True, random_state=0)
model = ImplicitFactors(**params).fit(train)
users, factors = model.user_factors_, model.item_factors_
full = ImplicitFactors(**params).fit(listening.plays[kept_users])  # for the upper bound

# %%
# Predict the held-out tracks' factors from audio
# -----------------------------------------------
# The baseline regresses the factors on MFCC statistics; the CNN learns them from
# log-mel spectrogram patches, a 2-D float target trained with mean squared error.
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

mfcc = MFCCStatistics().fit_transform(tracks.data)
ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 12)))
ridge.fit(mfcc[train_tracks], factors)

specs = MelSpectrogramTransformer(n_mels=64).fit_transform(tracks.data)
cnn = ConvEmbedder(
    embedding_dim=32,
    n_filters=32,
    patch_frames=64,
    hidden_units=(128,),
    pooling=("mean", "max"),
    weight_decay=1e-3,
    max_epochs=30,
    random_state=0,
)
cnn.fit(specs[train_tracks], factors.astype(np.float64))

rng = np.random.default_rng(0)
candidates = {
    "true": (full.user_factors_, full.item_factors_[test_tracks]),
    "random": (users, rng.standard_normal((len(test_tracks), 16))),
    "MFCC + ridge": (users, ridge.predict(mfcc[test_tracks])),
    "CNN": (users, cnn.predict(specs[test_tracks])),
}
scores = {name: evaluate_cold_start(u, v, test) for name, (u, v) in candidates.items()}
for name, s in scores.items():
    print(f"{name:>13}: mAP@500 {s['map_at_k']:.3f}  AUC {s['auc']:.3f}")

# %%
# Compare
# -------
# Every user ranks the held-out tracks by ``user_factors @ track_factors.T``; the
# mean average precision and the mean AUC measure how high the tracks the user
# actually played come.
fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
names = list(scores)
for ax, key, title in zip(axes, ["map_at_k", "auc"], ["mAP@500", "mean AUC per user"]):
    values = [scores[n][key] for n in names]
    ax.barh(names, values, color=["0.3", "0.7", "tab:orange", "tab:blue"])
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.2f}", va="center")
    ax.set_title(title)
    ax.set_xlim(0, 1.1)
axes[0].invert_yaxis()
fig.suptitle("Ranking held-out tracks for every user")
fig.tight_layout()
plt.show()

# %%
# Who gets a new track?
# ---------------------
# A held-out track goes to the users whose factors best match its predicted
# factors; the users who really played it should come first.
predicted = candidates["CNN"][1]
track = int(np.argmax(np.asarray(test.sum(axis=0)).ravel()))  # the most played one
top_users = np.argsort(-(users @ predicted[track]))[:10]
played = test[:, track].toarray().ravel() > 0
print(
    f"track {test_tracks[track]} ({tracks.genre[test_tracks[track]]}): "
    f"{played[top_users].sum()} of the 10 users it is recommended to played it "
    f"(base rate {played.mean():.2f})"
)

# %%
# On this small setting the CNN's lead over the MFCC baseline is modest; with more
# and longer clips it grows (``benchmarks/bench_coldstart.py``: 300 four-second
# clips; table in ``docs/benchmarks/coldstart.rst``). No audio model reaches the
# true factors: the listeners' tastes also depend on the artist, which the audio
# only partly reveals, and on noise that no audio can predict.
