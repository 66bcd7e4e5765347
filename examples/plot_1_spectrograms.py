"""
=====================================
Log-mel spectrograms of four genres
=====================================

The first stage of the chain turns audio into a log-mel spectrogram: time on one axis,
128 mel bands on the other, loudness in decibels. This example synthesises one clip of
each genre of :func:`~sklearn_music.datasets.make_tracks` and shows what
:class:`~sklearn_music.MelSpectrogramTransformer` makes of it: the genres differ in
tempo (the spacing of the vertical drum strokes), register and note density.
"""

# %%
# Synthesise a small collection and keep the first clip of each genre.
import matplotlib.pyplot as plt
import numpy as np

from sklearn_music import MelSpectrogramTransformer
from sklearn_music.datasets import make_tracks

tracks = make_tracks(n_tracks=16, n_genres=4, duration=6.0, random_state=0)
first = [np.flatnonzero(tracks.genre == g)[0] for g in tracks.genre_names]
print("genres:", list(tracks.genre_names))

# %%
# Compute the spectrograms. The transformer is stateless; ``fit`` only checks the
# parameters. The output is a float32 array ``(n_tracks, n_mels, n_frames)``.
mel = MelSpectrogramTransformer(sr=tracks.sr, n_mels=128, hop_length=512)
S = mel.fit_transform(tracks.data[first])
print("spectrograms:", S.shape, S.dtype)

# %%
# Plot them on a common colour scale.
hop_seconds = mel.hop_length / tracks.sr
fig, axes = plt.subplots(2, 2, figsize=(9, 6), sharex=True, sharey=True)
for ax, spec, genre in zip(axes.ravel(), S, tracks.genre_names):
    im = ax.imshow(
        spec,
        origin="lower",
        aspect="auto",
        extent=[0, spec.shape[1] * hop_seconds, 0, spec.shape[0]],
        vmin=S.max() - 80,
        vmax=S.max(),
        cmap="magma",
    )
    ax.set_title(genre)
for ax in axes[-1]:
    ax.set_xlabel("time (s)")
for ax in axes[:, 0]:
    ax.set_ylabel("mel band")
fig.colorbar(im, ax=axes, label="dB")
plt.show()
