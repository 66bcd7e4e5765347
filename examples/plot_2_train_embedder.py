"""
=========================================
Training the embedder on a stand-in task
=========================================

:class:`~sklearn_music.ConvEmbedder` learns track vectors by training a small
Dieleman-style CNN on labels you have — here the genre of synthetic clips. Training is
skorch's, so its history holds the loss of every epoch; we plot the learning curve and
check that the genre of held-out tracks is predicted far above chance.
"""

# %%
# Data: 96 synthetic clips of 4 genres, split by track into training and test halves.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from sklearn_music import ConvEmbedder, MelSpectrogramTransformer
from sklearn_music.datasets import make_tracks

tracks = make_tracks(n_tracks=96, duration=5.0, random_state=0)
S = MelSpectrogramTransformer(sr=tracks.sr, n_mels=64).fit_transform(tracks.data)
S_train, S_test, y_train, y_test = train_test_split(
    S, tracks.genre, test_size=0.5, stratify=tracks.genre, random_state=0
)
print("spectrograms:", S.shape)

# %%
# Train. Every epoch draws random 2-s patches from each training track; a fifth of
# the training tracks is held back by skorch to report a validation loss.
embedder = ConvEmbedder(
    embedding_dim=32,
    patch_frames=64,
    n_filters=32,
    max_epochs=15,
    validation_fraction=0.2,
    random_state=0,
)
embedder.fit(S_train, y_train)
history = embedder.net_.history
print(f"train loss: {history[0, 'train_loss']:.3f} -> {history[-1, 'train_loss']:.3f}")

# %%
# The learning curve, from skorch's history.
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(history[:, "epoch"], history[:, "train_loss"], "o-", label="training")
ax.plot(history[:, "epoch"], history[:, "valid_loss"], "s-", label="validation")
ax.set_xlabel("epoch")
ax.set_ylabel("cross-entropy")
ax.set_title("ConvEmbedder learning curve")
ax.legend()
plt.show()

# %%
# Held-out tracks: ``predict`` averages the patch predictions over the whole track,
# ``transform`` averages the patch embeddings into one vector per track.
accuracy = np.mean(embedder.predict(S_test) == y_test)
chance = 1 / len(np.unique(tracks.genre))
print(f"held-out genre accuracy: {accuracy:.2f} (chance {chance:.2f})")
print("embeddings:", embedder.transform(S_test).shape)
