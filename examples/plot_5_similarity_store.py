"""
=====================================================
Serving similar tracks from a precomputed store
=====================================================

A music service does not run a neural network when a listener opens a track page: it
looks the answer up. :class:`~sklearn_music.store.SimilarityStore` precomputes every
track's vector and its most similar tracks with their scores, and writes them to one
SQLite file (no server). Lookups are primary-key reads; new tracks are added
incrementally; a rebuild writes a new file and swaps it in atomically, so readers
never see a half-built store.
"""

# %%
# A fitted pipeline: spectrograms, then a CNN trained on genre, then nearest tracks.
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.pipeline import make_pipeline

from sklearn_music import ConvEmbedder, MelSpectrogramTransformer, NearestTracks
from sklearn_music.datasets import make_tracks
from sklearn_music.store import SimilarityStore

tracks = make_tracks(n_tracks=120, duration=4.0, random_state=0)
ids = [f"track{i:03d}" for i in range(len(tracks.data))]
catalogue, new = slice(0, 100), slice(100, 120)  # 20 tracks arrive later
pipe = make_pipeline(
    MelSpectrogramTransformer(sr=tracks.sr, n_mels=64),
    ConvEmbedder(embedding_dim=32, n_filters=32, patch_frames=64, max_epochs=10, random_state=0),
    NearestTracks(n_neighbors=10),
)
pipe.fit(tracks.data[catalogue], tracks.genre[catalogue])

# %%
# Precompute the store: every track's vector and its 10 most similar tracks.
path = Path(tempfile.mkdtemp()) / "tracks.db"
SimilarityStore.from_pipeline(path, pipe, tracks.data[catalogue], ids[catalogue], n_neighbors=10)
store = SimilarityStore(path, mode="a")
print(f"{len(store)} tracks in {path.name}, {path.stat().st_size / 1024:.0f} KiB")
for track_id, score in store.similar("track000", k=5):
    i = ids.index(track_id)
    print(f"  {track_id}  {tracks.genre[i]:<8} similarity {score:.3f}")

# %%
# New tracks: embed them with the same pipeline and add them without a rebuild. The
# lists of the stored tracks that a new track comes close to are updated too.
vectors = pipe[:-1].transform(tracks.data[new])
store.add(vectors, ids[new])
print(f"{len(store)} tracks after adding {len(vectors)}")

# The incremental store holds exactly what a full rebuild computes (exact search):
rebuilt = Path(path.parent) / "rebuilt.db"
all_vectors = np.array([store.vector(t) for t in ids])
SimilarityStore.build(rebuilt, all_vectors, ids, n_neighbors=10, algorithm="brute")
with SimilarityStore(rebuilt) as reference:
    same = all(
        [t for t, _ in store.similar(i, k=10)] == [t for t, _ in reference.similar(i, k=10)]
        for i in ids
    )
print("incremental add equals a full rebuild:", same)

# %%
# A listener's recommendations: the nearest unheard tracks to their history.
history = ["track000", "track001", "track002"]
print("history:", [str(tracks.genre[ids.index(t)]) for t in history])
for track_id, score in store.recommend(history, k=5):
    print(f"  {track_id}  {tracks.genre[ids.index(track_id)]:<8} score {score:.3f}")

# %%
# Lookup latency: the time of ``similar(track_id, k=10)`` over many lookups.
rng = np.random.default_rng(0)
queries = rng.choice(ids, size=5000)
latency = np.empty(len(queries))
for n, track_id in enumerate(queries):
    t0 = time.perf_counter()
    store.similar(track_id, k=10)
    latency[n] = time.perf_counter() - t0
store.close()
p50, p99 = np.percentile(latency * 1e6, [50, 99])
print(f"p50 {p50:.0f} µs, p99 {p99:.0f} µs per lookup")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.hist(latency * 1e6, bins=np.linspace(0, np.percentile(latency * 1e6, 99.9), 60))
ax.axvline(p99, color="tab:red", linestyle="--", label=f"p99 = {p99:.0f} µs")
ax.set_xlabel("similar(track_id, k=10) latency (µs)")
ax.set_ylabel("lookups")
ax.set_title("Similarity store lookups")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# Remove the example's store files.
import shutil

shutil.rmtree(path.parent, ignore_errors=True)
