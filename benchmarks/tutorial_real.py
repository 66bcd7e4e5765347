"""The real run behind the "Your own music folder" tutorial (docs/tutorial_folder.rst).

On the 8 open albums of the ``dev`` set (never seen by the pretrained model): saves
``pretrained.load("soundtracks-v1")`` as a model file, runs ``sklearn-music index``,
``similar`` and ``recommend`` (``--format json``), scores album retrieval of the stored
vectors with each track as a held-out query against the others
(:func:`sklearn_music.metrics.retrieval_report`), with MFCC statistics of the same
files as the reference, and writes

* ``docs/_static/tutorial/results.json``: the commands' outputs and the scores;
* ``docs/_static/tutorial/map.png``: a 2-D PCA map of the vectors, one colour an album;
* ``docs/_static/tutorial/scores.png``: the scores against MFCC statistics and chance;
* ``docs/benchmarks/tutorial_real.rst`` and ``tutorial_real_queries.rst``: the numbers
  and the commands' output, included by the tutorial page (``--render`` rewrites them
  from ``results.json``).

Track ids and every path written are relative to the set folder (``album/file``).
The docs build only reads these files.

    python benchmarks/tutorial_real.py --data $SKLEARN_MUSIC_DATA --workdir /tmp/tutorial
"""

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from _common import cpu_name
from _dev_store import cli, dev_store

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "docs" / "_static" / "tutorial"
SNIPPET = ROOT / "docs" / "benchmarks" / "tutorial_real.rst"


def queries(store_path):
    """The tutorial's ``similar`` and ``recommend`` calls, through the command line."""
    from sklearn_music.store import SimilarityStore

    with SimilarityStore(store_path) as store:
        ids = list(store)
    first = {}
    for t in ids:
        first.setdefault(t.split("/")[0], []).append(t)
    query = first["supertux"][0]
    history = [first["hedgewars"][0], first["hedgewars"][1], first["xmoto"][0]]
    out = {"similar_query": query, "history": history}
    text, _ = cli("similar", query, "--store", store_path, "-k", "5")
    out["similar_text"] = text
    for aggregate in ("mean", "clusters"):
        text, _ = cli(
            "recommend",
            *history,
            "--store",
            store_path,
            "-k",
            "6",
            "--aggregate",
            aggregate,
            "--format",
            "json",
        )
        out[f"recommend_{aggregate}"] = json.loads(text)["results"]
    return out


def scores(store_path, folder):
    """Album retrieval of the stored vectors and of MFCC statistics of the same files."""
    from sklearn.preprocessing import StandardScaler

    from sklearn_music import MFCCStatistics
    from sklearn_music.metrics import retrieval_report
    from sklearn_music.store import SimilarityStore

    with SimilarityStore(store_path) as store:
        ids, vectors = store.to_arrays()
    albums = np.array([t.split("/")[0] for t in ids])
    t0 = time.perf_counter()
    mfcc = MFCCStatistics(sr=16000, n_jobs=2).fit_transform([str(folder / t) for t in ids])
    mfcc_seconds = time.perf_counter() - t0
    mfcc = StandardScaler().fit_transform(mfcc)
    sizes = np.unique(albums, return_counts=True)[1]
    chance = float(np.sum(sizes * (sizes - 1)) / (len(albums) * (len(albums) - 1)))
    return (
        {
            "pretrained": retrieval_report(vectors, albums),
            "mfcc": retrieval_report(mfcc, albums),
            "chance_precision": chance,
            "mfcc_seconds": mfcc_seconds,
            "n_tracks": len(ids),
            "n_albums": len(sizes),
        },
        vectors,
        albums,
    )


def figures(vectors, albums, result):
    """The PCA map and the score bars, small PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    U = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    xy = PCA(n_components=2, random_state=0).fit_transform(U)
    fig, ax = plt.subplots(figsize=(5.5, 4.2), dpi=80)
    for i, album in enumerate(np.unique(albums)):
        m = albums == album
        ax.scatter(xy[m, 0], xy[m, 1], s=16, color=plt.cm.tab10(i), label=album)
    ax.set(xlabel="PC 1", ylabel="PC 2", title="119 tracks of 8 albums, soundtracks-v1")
    ax.legend(fontsize=7, loc="best", ncol=2)
    fig.tight_layout()
    fig.savefig(STATIC / "map.png")
    plt.close(fig)
    names = ["P@1", "P@10", "mAP"]
    fig, ax = plt.subplots(figsize=(5.5, 3.2), dpi=80)
    width = 0.38
    for j, (key, label) in enumerate([("pretrained", "soundtracks-v1"), ("mfcc", "MFCC stats")]):
        ax.bar(
            np.arange(3) + (j - 0.5) * width, [result[key][n] for n in names], width, label=label
        )
    ax.axhline(result["chance_precision"], color="gray", ls="--", lw=1, label="chance")
    ax.set_xticks(np.arange(3), names)
    ax.set(ylabel="same album", ylim=(0, 1), title="Album retrieval, each track held out")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(STATIC / "scores.png")
    plt.close(fig)


def snippet(result, stamp):
    """The numbers as reStructuredText, included by docs/tutorial_folder.rst."""
    p, m = result["pretrained"], result["mfcc"]
    index = result["index_seconds"]
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - vectors",
        "     - P@1",
        "     - P@10",
        "     - mAP",
        "   * - soundtracks-v1 (pretrained, from the store)",
        f"     - {p['P@1']:.3f}",
        f"     - {p['P@10']:.3f}",
        f"     - {p['mAP']:.3f}",
        "   * - MFCC statistics (standardised)",
        f"     - {m['P@1']:.3f}",
        f"     - {m['P@10']:.3f}",
        f"     - {m['mAP']:.3f}",
        "   * - chance (the fraction of same-album pairs)",
        *[f"     - {result['chance_precision']:.3f}"] * 2,
        "     - —",
        "",
        f"Made by ``python benchmarks/tutorial_real.py --data $SKLEARN_MUSIC_DATA`` on "
        f"{stamp}: {result['n_tracks']} tracks of {result['n_albums']} albums, "
        + (f"``index`` took {index:.0f} s" if index else "``index`` reused an earlier store")
        + f" on {result['machine']} (shared with other jobs: times are indicative).",
        "",
    ]
    return "\n".join(lines)


def query_snippet(result):
    """The command lines and what they printed, included by docs/tutorial_folder.rst."""
    q, history = result["similar_query"], result["history"]
    lines = [".. code-block:: text", "", f"   $ sklearn-music similar {q} --store dev.db -k 5"]
    lines += ["   " + line for line in result["similar_text"].splitlines()]
    for aggregate in ("mean", "clusters"):
        lines += [
            "",
            f"   $ sklearn-music recommend {' '.join(history)} \\",
            f"         --store dev.db -k 6 --aggregate {aggregate}",
        ]
        lines += [f"   {r['score']:.4f}\t{r['track']}" for r in result[f"recommend_{aggregate}"]]
    return "\n".join([*lines, ""]).replace("\t", "   ")


def write_snippets(result):
    """Both included snippets, from the results."""
    SNIPPET.write_text(snippet(result, result["date"]))
    SNIPPET.with_name("tutorial_real_queries.rst").write_text(query_snippet(result))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        default=os.environ.get("SKLEARN_MUSIC_DATA"),
        help="data root holding dev/ (default: $SKLEARN_MUSIC_DATA)",
    )
    parser.add_argument("--workdir", help="where the model and store go")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the snippets from results.json"
    )
    args = parser.parse_args(argv)
    if args.render:
        write_snippets(json.loads((STATIC / "results.json").read_text()))
        return
    if not args.workdir:
        parser.error("give --workdir")
    if not args.data:
        parser.error("give --data or set SKLEARN_MUSIC_DATA")
    folder = Path(args.data) / "dev"
    STATIC.mkdir(parents=True, exist_ok=True)
    store, _, index_seconds = dev_store(folder, args.workdir)
    result = queries(store)
    numbers, vectors, albums = scores(store, folder)
    result.update(numbers)
    result["index_seconds"] = index_seconds
    result["machine"] = f"{cpu_name()} ({os.cpu_count()} cores), Python {platform.python_version()}"
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    result["date"] = stamp
    figures(vectors, albums, result)
    (STATIC / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    write_snippets(result)
    print(json.dumps({k: result[k] for k in ("pretrained", "mfcc", "chance_precision")}))


if __name__ == "__main__":
    main()
