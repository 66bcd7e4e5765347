"""
=============================================
Similar tracks and recommendations for users
=============================================

With every track embedded by :class:`~sklearn_music.ConvEmbedder`,
:class:`~sklearn_music.NearestTracks` answers two questions a music service asks:

* "tracks that sound like this one": :meth:`~sklearn_music.NearestTracks.kneighbors`;
* "what should this listener hear next": :meth:`~sklearn_music.NearestTracks.recommend`
  ranks the tracks the listener has not played by their similarity to the mean of
  the vectors of the tracks they did play (their listening history,
  ``user_id -> [track_ids]``).

We check the recommendations against simulated listeners who have genre and artist
tastes (:func:`~sklearn_music.datasets.make_listening`): part of each history is
hidden, and a good recommender finds the hidden tracks far more often than chance.
"""

# %%
# Embed 120 synthetic tracks with a CNN trained on their genre.
import matplotlib.pyplot as plt
import numpy as np

from sklearn_music import ConvEmbedder, MelSpectrogramTransformer, NearestTracks
from sklearn_music.datasets import make_listening, make_tracks

tracks = make_tracks(n_tracks=120, duration=5.0, random_state=0)
track_ids = np.array([f"t{i:03d}" for i in range(len(tracks.data))])
S = MelSpectrogramTransformer(sr=tracks.sr, n_mels=64).fit_transform(tracks.data)
embedder = ConvEmbedder(
    embedding_dim=32, n_filters=32, patch_frames=64, max_epochs=10, random_state=0
)
E = embedder.fit(S, tracks.genre).transform(S)
nn = NearestTracks(n_neighbors=5).fit(E, tracks.genre, track_ids=track_ids)

# %%
# Tracks similar to one track.
distances, indices = nn.kneighbors(E[[0]], n_neighbors=6)
print(f"tracks like {track_ids[0]} ({tracks.genre[0]}, {tracks.artist[0]}):")
for d, i in zip(distances[0][1:], indices[0][1:]):  # the first is the track itself
    print(f"  {track_ids[i]}  {tracks.genre[i]:<8} {tracks.artist[i]:<16} distance {d:.3f}")

# %%
# Simulated listeners: each plays tracks of the genres and artists they like. Hide a
# quarter of every listener's tracks, recommend 10 from the rest of the history.
listening = make_listening(tracks, n_users=60, random_state=0)
rng = np.random.default_rng(0)
histories, hidden = [], []
for user in range(listening.plays.shape[0]):
    played = rng.permutation(listening.plays[user].indices)
    n_hidden = max(1, len(played) // 4)
    hidden.append(set(track_ids[played[:n_hidden]]))
    histories.append(list(track_ids[played[n_hidden:]]))
recommendations = nn.recommend(histories, n=10)

user = 0
genres, counts = np.unique(tracks.genre[np.isin(track_ids, histories[user])], return_counts=True)
print(
    f"listener 0 played {len(histories[user])} tracks: "
    + ", ".join(f"{c} {g}" for g, c in zip(genres, counts))
)
for track_id, score in recommendations[user][:5]:
    i = int(np.flatnonzero(track_ids == track_id)[0])
    mark = "hidden play" if track_id in hidden[user] else ""
    print(f"  {track_id}  {tracks.genre[i]:<8} similarity {score:.3f}  {mark}")

# %%
# How often are the hidden plays among the 10 recommendations? A random pick of 10
# unheard tracks finds ``10 * n_hidden / n_unheard`` of them on average.
hits = np.array([len(hidden[u] & {t for t, _ in recs}) for u, recs in enumerate(recommendations)])
n_hidden = np.array([len(h) for h in hidden])
n_unheard = len(track_ids) - np.array([len(h) for h in histories])
chance = 10 * n_hidden / n_unheard
print(
    f"hidden plays found per listener: {hits.mean():.2f} "
    f"(random: {chance.mean():.2f}) out of {n_hidden.mean():.1f}"
)

# %%
# The genres of a few listeners' histories and of their recommendations.
fig, axes = plt.subplots(1, 3, figsize=(9, 3), sharey=True)
for ax, user in zip(axes, [0, 1, 2]):
    heard = np.isin(track_ids, histories[user])
    recommended = np.isin(track_ids, [t for t, _ in recommendations[user]])
    share = [
        [np.mean(tracks.genre[mask] == g) for g in tracks.genre_names]
        for mask in (heard, recommended)
    ]
    x = np.arange(len(tracks.genre_names))
    ax.bar(x - 0.2, share[0], 0.4, label="history")
    ax.bar(x + 0.2, share[1], 0.4, label="recommended")
    ax.set_xticks(x, tracks.genre_names, rotation=30)
    ax.set_title(f"listener {user}")
axes[0].set_ylabel("share of tracks")
axes[0].legend()
fig.tight_layout()
plt.show()
