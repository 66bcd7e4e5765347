"""
====================================================
Side information: lyrics and metadata in the network
====================================================

A track is more than its spectrogram: it may have lyrics, an artist, a genre, a
release year. :class:`~sklearn_music.MultimodalEmbedder` concatenates a text branch
(a GRU over the lyrics' tokens), metadata embeddings and
:class:`~sklearn_music.ConvEmbedder`'s convolutional audio branch before the layers
that make the embedding.

The open real-music collections this project benchmarks on are instrumental, so
the text branch is shown here on built-in synthetic data only:
:func:`~sklearn_music.datasets.make_tracks` with ``lyrics=True`` writes lyrics whose
made-up words depend on the genre and on the artist (with noise words and 20 %
instrumental tracks), and a release year around an era of each artist.

We train on half of every artist's tracks to recognise the artist, embed the other
half, and measure how well each held-out track retrieves the other tracks of its
artist (leave one out): with the audio alone, with the lyrics too, with lyrics and
metadata, and with the lyrics-and-metadata model given the audio alone.
"""

# %%
# Tracks with lyrics
# ------------------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from sklearn_music import MelSpectrogramTransformer, MultimodalEmbedder, add_spectrograms
from sklearn_music.datasets import make_tracks
from sklearn_music.metrics import retrieval_report

torch.set_num_threads(1)
tracks = make_tracks(96, duration=2.0, sr=8000, random_state=0, lyrics=True)
print(tracks.lyrics[0])
print("instrumental tracks:", sum(lyric is None for lyric in tracks.lyrics))

# %%
# The table: :func:`~sklearn_music.add_spectrograms` turns a column of audio
# (paths or, here, waveforms) into a column of log-mel spectrograms.
table = pd.DataFrame(
    {
        "audio": list(tracks.data),
        "lyrics": tracks.lyrics,
        "genre": tracks.genre,
        "year": tracks.year,
    }
)
mel = MelSpectrogramTransformer(sr=8000, n_fft=512, hop_length=128, n_mels=32)
table = add_spectrograms(table, mel=mel, path_column="audio").drop(columns="audio")
train, test = train_test_split(
    np.arange(len(table)), test_size=0.5, stratify=tracks.artist, random_state=0
)

# %%
# Three models, one setting
# -------------------------
# Each side input of a training patch is dropped (replaced by its learned
# "missing" representation) with probability ``modality_dropout``, so that the
# model also embeds tracks without lyrics or metadata.
params = dict(
    embedding_dim=32, audio_dim=32, n_filters=16, patch_frames=32, hidden_units=(64,),
    token_dim=16, text_dim=16, metadata_dim=4, patches_per_track=4, max_epochs=25,
    lr=1e-2, modality_dropout=0.5, random_state=0,
)  # fmt: skip
side = {
    "audio": {},
    "audio + lyrics": dict(text_column="lyrics"),
    "all": dict(text_column="lyrics", categorical_columns=["genre"], numeric_columns=["year"]),
}
scores = {}
for name, columns in side.items():
    model = MultimodalEmbedder(**params, **columns).fit(table.iloc[train], tracks.artist[train])
    scores[name] = retrieval_report(model.transform(table.iloc[test]), tracks.artist[test])
# the last model, given only the spectrograms of the held-out tracks
bare = model.transform(table.iloc[test][["spectrogram"]])
scores["all, side inputs removed"] = retrieval_report(bare, tracks.artist[test])
for name, score in scores.items():
    print(f"{name:26s}", {k: round(v, 3) for k, v in score.items()})

# %%
# Retrieval of the artist's other tracks
# --------------------------------------
# One seed and a short training: the benchmark (``benchmarks/bench_side.py``,
# table in the documentation) averages three seeds of a larger run.
fig, ax = plt.subplots(figsize=(6, 3))
names = list(scores)
ax.barh(names, [scores[n]["mAP"] for n in names], color="tab:blue")
ax.invert_yaxis()
ax.set_xlabel("mAP (same artist), held-out tracks")
fig.tight_layout()
plt.show()
