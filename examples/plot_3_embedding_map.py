"""
==================================================
A map of track embeddings: learned vs hand-made
==================================================

Similar tracks should lie close together. This example draws a 2-D map (t-SNE) of
held-out tracks twice: once from MFCC statistics, the hand-made baseline
(:class:`~sklearn_music.MFCCStatistics`), once from the vectors of a
:class:`~sklearn_music.ConvEmbedder` trained on the genre of other tracks. Colour is
the genre; the numbers in the titles are leave-one-out retrieval scores
(:func:`~sklearn_music.metrics.retrieval_report`) on the same held-out tracks, so the
picture can be checked against a measurement.
"""

# %%
# 240 synthetic tracks of 4 genres; half train the CNN, the other half are mapped.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.manifold import TSNE
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sklearn_music import ConvEmbedder, MelSpectrogramTransformer, MFCCStatistics
from sklearn_music.datasets import make_tracks
from sklearn_music.metrics import retrieval_report

tracks = make_tracks(n_tracks=240, duration=4.0, random_state=1)
train, test = train_test_split(np.arange(240), test_size=0.5, stratify=tracks.genre, random_state=0)

# %%
# The two representations of the held-out tracks.
mfcc = StandardScaler().fit_transform(MFCCStatistics(sr=tracks.sr).fit_transform(tracks.data[test]))

S = MelSpectrogramTransformer(sr=tracks.sr, n_mels=64).fit_transform(tracks.data)
embedder = ConvEmbedder(
    embedding_dim=32, n_filters=32, patch_frames=64, max_epochs=20, random_state=0
)
cnn = embedder.fit(S[train], tracks.genre[train]).transform(S[test])

reports = {
    "MFCC statistics (60-d)": (mfcc, retrieval_report(mfcc, tracks.genre[test])),
    "ConvEmbedder (32-d)": (cnn, retrieval_report(cnn, tracks.genre[test])),
}
for name, (_, report) in reports.items():
    print(f"{name:>24}: " + ", ".join(f"{k} {v:.3f}" for k, v in report.items()))

# %%
# The maps: t-SNE on cosine distances, the same settings for both.
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
for ax, (name, (vectors, report)) in zip(axes, reports.items()):
    xy = TSNE(
        n_components=2, metric="cosine", init="random", perplexity=20, random_state=0
    ).fit_transform(vectors)
    for genre in tracks.genre_names:
        mask = tracks.genre[test] == genre
        ax.scatter(xy[mask, 0], xy[mask, 1], s=14, label=genre)
    ax.set_title(f"{name}\nP@10 {report['P@10']:.2f}, mAP {report['mAP']:.2f}")
    ax.set_xticks([])
    ax.set_yticks([])
axes[0].legend(loc="best", fontsize="small")
fig.suptitle("Held-out tracks, coloured by genre")
fig.tight_layout()
plt.show()
