"""
=====================================================
A listening report, and why two tracks are similar
=====================================================

Retrieval metrics count labels; a listener hears the music. The listening report of
:func:`sklearn_music.report.write_report` is a static web page: each query track with
its nearest tracks, players, scores, mel-spectrogram thumbnails and three buttons per
pair (similar, not similar, unsure). The judgments download as JSON and
:func:`sklearn_music.metrics.assessor_report` turns them into a precision with a
confidence interval. :func:`sklearn_music.report.why_similar` shows which moments of
two tracks the embedder finds alike. See :doc:`/listening` for running a panel.
"""

# %%
# A small collection: synthetic tracks in genre folders, a CNN embedder trained on
# genre, and a similarity store whose track ids are the paths in the folder (as
# ``sklearn-music index`` writes them).
import json
import shutil
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf
from sklearn.pipeline import make_pipeline

from sklearn_music import ConvEmbedder, MelSpectrogramTransformer
from sklearn_music.datasets import make_tracks
from sklearn_music.metrics import assessor_report
from sklearn_music.report import why_similar, write_report
from sklearn_music.store import SimilarityStore

root = Path(tempfile.mkdtemp())
tracks = make_tracks(n_tracks=24, n_genres=3, duration=6.0, random_state=0)
ids = []
for i, (y, genre) in enumerate(zip(tracks.data, tracks.genre)):
    (root / "music" / genre).mkdir(parents=True, exist_ok=True)
    sf.write(root / "music" / genre / f"track{i:02d}.wav", y, tracks.sr)
    ids.append(f"{genre}/track{i:02d}.wav")

model = make_pipeline(
    MelSpectrogramTransformer(sr=tracks.sr, n_mels=48),
    ConvEmbedder(embedding_dim=16, n_filters=16, patch_frames=32, max_epochs=8, random_state=0),
)
model.fit(list(tracks.data), tracks.genre)
SimilarityStore.build(root / "tracks.db", model.transform(list(tracks.data)), ids, n_neighbors=5)

# %%
# Why similar: the cosine similarity of every patch of one track with every patch of
# the other. The left panel is a hand-built case: a track made of two halves (a
# track of another genre, then ``track00``) against ``track00`` itself; the
# best-matching pair of patches (red cross) lies in the second half, where the same
# music is. An embedder trained on genre finds much of a track alike to much of
# another track of its genre, so the matrix is bright in blocks rather than along a
# sharp diagonal. The right panel is a query and its nearest stored track.
half = tracks.data[23][: tracks.sr * 3]
music = tracks.data[0][: tracks.sr * 3]
built = why_similar(model, np.concatenate([half, music]), music)
query = ids[0]
neighbour, score = SimilarityStore(root / "tracks.db").similar(query, k=1)[0]
pair = why_similar(model, root / "music" / query, root / "music" / neighbour)

fig, axes = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
for ax, why, title, (ylabel, xlabel) in (
    (axes[0], built, "two halves vs. the second half", ("other genre | track00", "track00")),
    (axes[1], pair, f"{query} vs. {neighbour}", (query, neighbour)),
):
    a, b = why.offsets_a, why.offsets_b
    extent = (b[0], b[-1] + why.patch_seconds, a[-1] + why.patch_seconds, a[0])
    im = ax.imshow(why.similarity, extent=extent, aspect="auto", cmap="viridis")
    i, j = why.best
    ax.plot(b[j] + why.patch_seconds / 2, a[i] + why.patch_seconds / 2, "r+", ms=14, mew=2)
    ax.set(title=title, xlabel=f"{xlabel} (s)", ylabel=f"{ylabel} (s)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="cosine similarity of patches")
print(f"best match of the built case: {built.best_offsets[0]:.2f} s into the two-half track")

# %%
# The report: 4 queries with 5 neighbours each. With the model, every excerpt starts at
# the track's most representative moment and every pair has its heat map and its two
# best-matching moments to play side by side.
start = time.perf_counter()
result = write_report(
    root / "tracks.db",
    music_dir=root / "music",
    out=root / "report",
    queries=4,
    k=5,
    model=model,
    excerpt_seconds=4.0,
    random_state=0,
)
print(
    f"{result.n_queries} queries, {result.n_items} pairs, {result.n_tracks} excerpts, "
    f"{result.size / 1e6:.2f} MB, written in {time.perf_counter() - start:.1f} s"
)


# %%
# A screenshot of the report in headless Chromium (when the machine has Chromium,
# chromedriver and selenium; the documentation build installs them).
def screenshot(index, path):
    """Open ``index`` in headless Chromium and save a screenshot; None if no browser."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return "selenium is not installed"
    names = ("chromium", "chromium-browser", "google-chrome")
    binary = next((shutil.which(n) for n in names if shutil.which(n)), None)
    if binary is None or shutil.which("chromedriver") is None:
        return "no Chromium and chromedriver on this machine"
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(index.as_uri())
        for _ in range(100):  # the players have loaded their excerpts
            if driver.execute_script(
                "return Array.from(document.querySelectorAll('audio')).every(a => a.duration > 0)"
            ):
                break
            time.sleep(0.1)
        driver.execute_script(
            "document.querySelectorAll('.judge button')[0].click();"
            "document.querySelectorAll('.judge button')[4].click();"
            "document.querySelector('details.why').open = true;"
        )
        driver.save_screenshot(str(path))
    finally:
        driver.quit()
    return None


problem = screenshot(result.index, root / "report.png")
if problem is None:
    fig, ax = plt.subplots(figsize=(9, 7.4), layout="constrained")
    ax.imshow(plt.imread(root / "report.png"))
    ax.set_axis_off()
else:
    print(f"no screenshot: {problem}")

# %%
# Scoring a panel. Here two simulated assessors: one hears genre (a neighbour is
# similar when it has the query's genre), the other agrees except that they are unsure
# about the last neighbour of every query. In a real panel these are the files that
# the assessors download from the page.
data = json.loads(
    result.index.read_text().split('type="application/json">')[1].split("</script>")[0]
)


def judgments(name, unsure_last):
    rows = []
    for q in data["queries"]:
        for it in q["items"]:
            judgment = "similar" if it["label"] == q["label"] else "not_similar"
            if unsure_last and it["rank"] == len(q["items"]):
                judgment = "unsure"
            rows.append({**{k: it[k] for k in ("item", "rank")}, "query": q["track"],
                         "track": it["track"], "judgment": judgment})  # fmt: skip
    return {"format": "sklearn-music-judgments/1", "report": data["report"],
            "mode": "single", "assessor": name, "judgments": rows}  # fmt: skip


report = assessor_report([judgments("ann", False), judgments("bob", True)], k=5)
p = report["precision"]
print(f"precision@5 = {p['precision']:.2f}, 95% CI {p['ci'][0]:.2f}-{p['ci'][1]:.2f}")
print(f"Cohen's kappa = {report['agreement']['cohen_kappa']:.2f}")
shutil.rmtree(root)
