"""Hostile store and model files: how many give a clear error or the right answer.

Runs the damaged, truncated, tampered and crafted cases of
``tests/test_store_hostile.py`` and ``tests/test_persistence_hostile.py`` (their
case tables are read from those files) against whatever ``sklearn_music`` is on
the path, and classifies each outcome:

clear      an exception of ValueError/TypeError kind (or FileNotFoundError) whose
           message names the file
correct    the same answers as the undamaged file
unclear    another exception, or a message that does not name the file
silent     different answers and no error
lost       (writes) tracks that a write did not keep

Run from the repository root, e.g. against an older checkout for a "before" count::

    PYTHONPATH=. python benchmarks/hostile_files.py
"""

import ast
import io
import json
import os
import pickle
import shutil
import sqlite3
import sys
import tempfile
import warnings
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
TESTS = Path(__file__).resolve().parent.parent / "tests"
N, DIM, K = 50, 8, 5


def _table(filename, name):
    tree = ast.parse((TESTS / filename).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return ast.literal_eval(node.value)
    raise KeyError(name)


def _classify(path, fn):
    try:
        return "correct" if fn() else "silent"
    except (ValueError, TypeError, FileNotFoundError) as exc:
        if isinstance(exc, KeyError):
            return "unclear"
        return "clear" if str(path) in str(exc) else "unclear"
    except Exception:
        return "unclear"


# --------------------------------------------------------------------------- #
# stores
# --------------------------------------------------------------------------- #
def _reference(path):
    from sklearn_music.store import SimilarityStore

    with SimilarityStore(path) as s:
        ids = list(s)
        return {
            "ids": ids,
            "similar": {t: s.similar(t) for t in ids},
            "vector": {t: s.vector(t).tolist() for t in ids},
            "recommend": s.recommend(ids[:3], k=4, exhaustive=True),
        }


def _same(path, ref):
    from sklearn_music.store import SimilarityStore

    with SimilarityStore(path) as s:
        return (
            len(s) == N
            and list(s) == ref["ids"]
            and all(s.similar(t) == ref["similar"][t] for t in ref["ids"])
            and all(s.vector(t).tolist() == ref["vector"][t] for t in ref["ids"])
            and s.recommend(ref["ids"][:3], k=4, exhaustive=True) == ref["recommend"]
        )


def store_cases(tmp):
    from sklearn_music.store import SimilarityStore

    rng = np.random.default_rng(0)
    orig = tmp / "orig.db"
    X = rng.normal(size=(N, DIM)).astype(np.float32)
    SimilarityStore.build(orig, X, [f"track{i:02d}" for i in range(N)], n_neighbors=K)
    ref = _reference(orig)
    data = orig.read_bytes()
    out = Counter()

    def case(family, mutate):
        path = tmp / "case.db"
        shutil.copyfile(orig, path)
        mutate(path)
        out[(family, _classify(path, lambda: _same(path, ref)))] += 1
        path.unlink()

    def sql(text):
        def run(path):
            conn = sqlite3.connect(path)
            with conn:
                try:
                    conn.execute(text)
                except sqlite3.OperationalError:
                    pass  # a column that the older format lacks
            conn.close()

        return run

    for text, _ in _table("test_store_hostile.py", "META_EDITS"):
        case("store: tampered meta/schema", sql(text))
    for text, _ in _table("test_store_hostile.py", "ROW_EDITS"):
        case("store: damaged row", sql(text))
    for content in (b"", b"not a database" * 100, b"SQLite format 3\0" + b"\xff" * 200):
        case("store: not a store", lambda p, c=content: p.write_bytes(c))
    for fraction in (0.0, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.999):
        case("store: truncated", lambda p, f=fraction: p.write_bytes(data[: int(len(data) * f)]))
    flips = np.random.default_rng(1)
    for pos in sorted(set(flips.integers(0, len(data), size=150).tolist())):
        damaged = bytearray(data)
        damaged[pos] ^= 1 << int(flips.integers(0, 8))
        case("store: flipped byte", lambda p, d=bytes(damaged): p.write_bytes(d))
    # a write through a symbolic link
    real, link = tmp / "real.db", tmp / "link.db"
    shutil.copyfile(orig, real)
    link.symlink_to(real)
    with SimilarityStore(link, mode="a") as s:
        s.add(np.ones((1, DIM)), ["new"])
    with SimilarityStore(real) as s:
        out[("store: write via symlink", "correct" if "new" in s else "lost")] += 1
    return out


# --------------------------------------------------------------------------- #
# models
# --------------------------------------------------------------------------- #
def _fit_model(path):
    from sklearn_music.persistence import save_model
    from sklearn_music.utils._test_common import tiny_pipeline

    model, tracks = tiny_pipeline(6, index=False)
    model.fit(tracks.data, tracks.genre)
    save_model(model, path)
    return tracks.data, model.transform(tracks.data)


def _state(schema):
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("__class__") == "ConvEmbedder":
                return node["content"]["content"]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def model_cases(tmp):
    from sklearn_music.persistence import load_model, save_model

    orig = tmp / "model.skops"
    X, E = _fit_model(orig)
    data = orig.read_bytes()
    with zipfile.ZipFile(orig) as z:
        members = {n: z.read(n) for n in z.namelist()}
    out = Counter()
    marker = tmp / "pwned"
    ids = iter(range(10**15, 10**16))

    def case(family, build):
        path = tmp / "case.skops"
        build(path)
        result = _classify(path, lambda: np.array_equal(load_model(path).transform(X), E))
        if marker.exists():
            result = "code ran"
            marker.unlink()
        out[(family, result)] += 1

    def rewrite(edit):
        def build(path):
            m = dict(members)
            schema = json.loads(m["schema.json"])
            edit(schema, m, _state(schema))
            m["schema.json"] = json.dumps(schema).encode()
            with zipfile.ZipFile(path, "w") as z:
                for n, d in m.items():
                    z.writestr(n, d)

        return build

    for f in (0.0, 0.05, 0.3, 0.6, 0.9, 0.99, 0.9999):
        case("model: truncated", lambda p, f=f: p.write_bytes(data[: int(len(data) * f)]))
    for schema in (b"{not json", b"[1, 2, 3]", b'{"__class__": "Pipeline"}', b"\xff\xfe\x00"):
        case(
            "model: damaged schema",
            lambda p, x=schema: _write_members(p, {**members, "schema.json": x}),
        )
    import torch

    def tb(obj):
        b = io.BytesIO()
        torch.save(obj, b)
        return b.getvalue()

    for weights in (
        b"not a tensor archive",
        b"",
        pickle.dumps(_RunsCode(marker)),
        tb({"w": _RunsCode(marker)}),
        tb([torch.zeros(2)]),
    ):
        case(
            "model: bad/hostile weights",
            rewrite(lambda s, m, st, w=weights: m.__setitem__(st["_net_weights"]["file"], w)),
        )

    def set_value(key, value):
        def edit(s, m, st):
            node = st["_net_init"]["content"][key]
            node["content"], node["__id__"] = value, next(ids)

        return edit

    for key, value, _ in _table("test_persistence_hostile.py", "NET_INIT_EDITS"):
        case("model: injected _net_init", rewrite(set_value(key, value)))
    # ImplicitFactors round trip
    from sklearn_music import ImplicitFactors

    fac = ImplicitFactors(n_factors=2, random_state=0).fit({"a": ["x", "y"], "b": ["y", "z"]})
    path = save_model(fac, tmp / "factors.skops")
    out[
        (
            "model: ImplicitFactors round trip",
            _classify(
                path, lambda: np.array_equal(load_model(path).item_factors_, fac.item_factors_)
            ),
        )
    ] += 1
    return out


def _write_members(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for n, d in members.items():
            z.writestr(n, d)


def main():
    with tempfile.TemporaryDirectory() as d:
        out = store_cases(Path(d)) + model_cases(Path(d))
    kinds = ["correct", "clear", "unclear", "silent", "lost", "code ran"]
    families = sorted({f for f, _ in out})
    print(f"{'family':36s} " + " ".join(f"{k:>8s}" for k in kinds))
    for fam in families:
        print(f"{fam:36s} " + " ".join(f"{out[(fam, k)]:8d}" for k in kinds))
    print(f"{'total':36s} " + " ".join(f"{sum(out[(f, k)] for f in families):8d}" for k in kinds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
