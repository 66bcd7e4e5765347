"""Hostile input to the estimators: a clear error naming the problem, or the right result.

Mixed-type and missing ids and labels, all-zero vectors under the cosine metric, empty
spectrograms, strings where a sequence of ids is expected. Before the hardening each
of these gave a raw ``IndexError`` / ``TypeError: '<' not supported`` or, worse, a
silent wrong result (``track_ids=["a", 1]`` stored ``"1"``; a zero vector was
everyone's neighbour at distance 1).
"""

import os

import numpy as np
import pytest

from sklearn_music import ConvEmbedder, NearestTracks
from sklearn_music.store import SimilarityStore

X6 = np.random.default_rng(0).normal(size=(6, 3))


# ----------------------------------------------------------- ids and labels
@pytest.mark.parametrize(
    "ids, match",
    [
        (["a", 1], r"track_ids\[1\]=1 is int but track_ids\[0\]='a' is str"),
        (np.array(["a", 1], dtype=object), r"track_ids\[1\]=1 is int"),
        ([1, "1"], r"track_ids\[1\]='1' is str but track_ids\[0\]=1 is int"),
        ([b"a", "a"], r"track_ids\[1\]='a' is str but track_ids\[0\]=b'a' is bytes"),
        ([1, 2.5], r"track_ids\[1\]=2.5 is float"),
        ([True, 2], r"track_ids\[1\]=2 is int but track_ids\[0\]=True is bool"),
        ([None, "b"], r"track_ids\[0\] is None: missing ids"),
        (["a", None], r"track_ids\[1\] is None"),
        ([np.nan, 1.0], r"track_ids\[0\] is nan"),
        (np.array([1.0, np.nan]), r"track_ids\[1\] is NaN"),
    ],
)
def test_mixed_or_missing_track_ids_are_refused(ids, match):
    with pytest.raises(ValueError, match=match):
        NearestTracks(n_neighbors=1).fit(X6[:2], track_ids=ids)


@pytest.mark.parametrize(
    "y, match",
    [
        (["a", None], r"y\[1\] is None: missing labels"),
        ([None, None], r"y\[0\] is None"),
        (["a", 1], r"y\[1\]=1 is int but y\[0\]='a' is str"),
        (np.array(["a", 1], dtype=object), r"y\[1\]=1 is int"),
        ([1.0, np.nan], r"y\[1\] is nan"),
        (np.array([1.0, np.nan]), "NaN"),
    ],
)
def test_mixed_or_missing_labels_are_refused(y, match):
    with pytest.raises(ValueError, match=match):
        NearestTracks(n_neighbors=1).fit(X6[:2], y)


@pytest.mark.parametrize(
    "ids",
    [
        [10, 20, 30, 40, 50, 60],
        np.arange(6, dtype=np.int32),
        list("abcdef"),
        np.array(list("abcdef"), dtype=object),
        [np.str_("a"), "b", "c", "d", "e", "f"],  # numpy and Python str are one kind
        [np.int64(1), 2, 3, 4, 5, 6],
        [0.5, 1.5, 2.5, 3.5, 4.5, 5.5],
    ],
)
def test_one_kind_ids_are_kept_exactly(ids):
    nn = NearestTracks(n_neighbors=2, metric="euclidean").fit(X6, track_ids=ids)
    assert nn.track_ids_.tolist() == list(np.asarray(ids).tolist())
    first = nn.track_ids_.tolist()[0]
    (recs,) = nn.recommend([first], n=5)
    assert {type(t) for t, _ in recs} == {type(first)}
    assert first not in [t for t, _ in recs]


def test_labels_of_one_kind_give_labels_of_that_kind():
    y = np.array([1, 2, 1, 2, 1, 2])
    nn = NearestTracks(n_neighbors=1).fit(X6, y)
    assert nn.predict(X6).tolist() == y.tolist()
    assert nn.classes_.tolist() == [1, 2]


# ------------------------------------------------------ zero vectors, cosine
@pytest.mark.parametrize("algorithm", ["brute", "nndescent"])
def test_zero_vector_under_cosine_is_refused_like_the_store(algorithm, tmp_path):
    Z = X6.copy()
    Z[2] = 0
    with pytest.raises(ValueError, match="X row 2 is all zeros; its cosine similarity"):
        NearestTracks(n_neighbors=1, algorithm=algorithm).fit(Z)
    with pytest.raises(ValueError, match="vectors row 2 is all zeros; its cosine similarity"):
        SimilarityStore.build(tmp_path / "s.db", Z, list("abcdef"))
    # the Euclidean metric has no such hole: the zero row is a track like any other
    nn = NearestTracks(n_neighbors=1, metric="euclidean", algorithm=algorithm).fit(Z)
    assert nn.kneighbors(np.zeros((1, 3)), return_distance=False)[0, 0] == 2


def test_zero_query_under_cosine_is_refused():
    nn = NearestTracks(n_neighbors=1).fit(X6)
    Q = np.ones((3, 3))
    Q[1] = 0
    with pytest.raises(ValueError, match="X row 1 is all zeros"):
        nn.kneighbors(Q)
    with pytest.raises(ValueError, match="X row 1 is all zeros"):
        nn.kneighbors_graph(Q)


def test_history_whose_unit_vectors_cancel_is_refused():
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    nn = NearestTracks(n_neighbors=1).fit(X)
    with pytest.raises(ValueError, match="sum to zero"):
        nn.recommend([0, 1], n=1)
    # "max" has a direction per history track
    assert len(nn.recommend([0, 1], n=2, aggregate="max")[0]) == 2


# ------------------------------------------------------- query arguments
@pytest.fixture(scope="module")
def fitted():
    return NearestTracks(n_neighbors=2).fit(X6, track_ids=list("abcdef"))


@pytest.mark.parametrize(
    "history, error, match",
    [
        ("abc", TypeError, r"got the string 'abc'; pass \['abc'\]"),
        (b"ab", TypeError, "got the string"),
        (None, TypeError, "got NoneType None"),
        (5, TypeError, "got int 5"),
        ([["a"], "bc"], TypeError, r"history\[1\]='bc' is a single id but history\[0\]"),
        ([], ValueError, "history of user 0 is empty"),
        (["zz"], KeyError, "unknown track id 'zz'"),
    ],
)
def test_recommend_bad_history(fitted, history, error, match):
    with pytest.raises(error, match=match):
        fitted.recommend(history)


@pytest.mark.parametrize("n", [None, 0, -1, 2.5, "3", True])
def test_recommend_bad_n(fitted, n):
    with pytest.raises(ValueError, match=f"n={n!r} must be a positive integer"):
        fitted.recommend(["a"], n=n)


@pytest.mark.parametrize("k", [0, 2.5, "3", True])
def test_kneighbors_bad_k(fitted, k):
    with pytest.raises(ValueError, match="must be a positive integer"):
        fitted.kneighbors(X6[:1], n_neighbors=k)


def test_duplicates_in_a_history_count_once(fitted):
    assert fitted.recommend(["a", "a"], n=5) == fitted.recommend(["a"], n=5)


def test_store_query_arguments(tmp_path):
    path = tmp_path / "s.db"
    SimilarityStore.build(path, X6, list("abcdef"), n_neighbors=3)
    with SimilarityStore(path) as store:
        with pytest.raises(ValueError, match="'k' parameter .* Got None"):
            store.similar("a", k=None)
        with pytest.raises(ValueError, match="'history' parameter .* Got 'abc'"):
            store.recommend("abc")
        with pytest.raises(ValueError, match="'k' parameter .* Got None"):
            store.recommend(["a"], k=None)


# ------------------------------------------------------------ ConvEmbedder
def _embedder():
    return ConvEmbedder(
        embedding_dim=2, n_filters=2, patch_frames=9, hidden_units=(4,), max_epochs=1
    )


Y4 = np.array([0, 1, 0, 1])


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.zeros((4, 5, 0), np.float32), Y4, r"shape \(4, 5, 0\) .*at least one mel band and one"),
        (np.zeros((4, 0, 10), np.float32), Y4, r"shape \(4, 0, 10\)"),
        ([], [], "X is empty: ConvEmbedder needs at least one track"),
        ((), [], "X is empty"),
        (np.zeros((0, 5, 10), np.float32), [], "0 sample"),
        ([np.zeros((5, 10))] * 3 + [np.zeros((5, 0))], Y4, r"X\[3\] has shape \(5, 0\)"),
        ([np.zeros((5, 10))] * 3 + [np.zeros(5)], Y4, r"X\[3\] is \(5,\) but X\[0\] is a 2-D"),
        ([np.zeros(5), np.zeros((5, 10))], [0, 1], r"X\[0\] is \(5,\) but X\[1\]"),
        (np.zeros((4, 5, 10), np.float32), ["a", None, "a", "b"], r"y\[1\] is None"),
        (np.zeros((4, 5, 10), np.float32), ["a", 1, "a", 1], r"y\[1\]=1 is int"),
        (np.zeros((4, 5, 10), np.float32), {"genre": ["a", None, "a", "b"]}, r"y\['genre'\]\[1\]"),
    ],
)
def test_conv_embedder_bad_fit_input(X, y, match):
    emb = _embedder()
    with pytest.raises(ValueError, match=match):
        emb.fit(X, y)
    assert not [k for k in vars(emb) if k.endswith("_")]  # nothing half-set


@pytest.fixture(scope="module")
def embedder():
    X = np.random.default_rng(0).normal(size=(4, 5, 12)).astype(np.float32)
    return _embedder().set_params(random_state=0).fit(X, Y4)


@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros((2, 5, 0), np.float32), r"shape \(2, 5, 0\)"),
        ([], "X is empty"),
        ([np.zeros((5, 0))], r"X\[0\] has shape \(5, 0\)"),
        (np.zeros((2, 6, 10), np.float32), "X has 6 features"),
    ],
)
def test_conv_embedder_bad_transform_input(embedder, X, match):
    with pytest.raises(ValueError, match=match):
        embedder.transform(X)


def test_conv_embedder_keeps_label_type(embedder):
    X = np.random.default_rng(1).normal(size=(4, 5, 12)).astype(np.float32)
    assert embedder.predict(X).dtype == Y4.dtype
    emb = _embedder().set_params(random_state=0).fit(X, np.array(["x", "y", "x", "y"]))
    assert set(emb.predict(X).tolist()) <= {"x", "y"}


# --------------------------------------------- the CLI's arguments to them
SR = 8000
TINY = ["--epochs", "1", "--embedding-dim", "4", "--patch-frames", "16", "--sr", str(SR)]


@pytest.fixture(scope="module")
def odd_music(tmp_path_factory):
    """MUSIC/<genre>/<n>.wav, one file name not valid UTF-8 (b"caf\\xe9.wav")."""
    import soundfile as sf

    from sklearn_music.datasets import make_tracks

    root = tmp_path_factory.mktemp("music")
    tracks = make_tracks(6, n_genres=2, duration=1.0, sr=SR, random_state=0)
    for i, (x, genre) in enumerate(zip(tracks.data, tracks.genre)):
        (root / genre).mkdir(exist_ok=True)
        sf.write(root / genre / f"{i}.wav", x, SR)
        if i == 0:  # soundfile cannot write to a name with undecodable bytes
            os.rename(root / genre / "0.wav", root / genre / os.fsdecode(b"caf\xe9.wav"))
    return root, f"{tracks.genre[0]}/" + os.fsdecode(b"caf\xe9.wav")


@pytest.mark.parametrize("where", ["missing/m.skops", "folder"])
def test_cli_fit_checks_the_model_path_before_training(odd_music, tmp_path, capsys, where):
    from sklearn_music.cli import main

    target = tmp_path / where
    if where == "folder":
        target.mkdir()
    assert main(["fit", str(odd_music[0]), "--model", str(target), *TINY]) == 1
    captured = capsys.readouterr()
    assert "cannot write the model to" in captured.err
    assert ("does not exist" if where != "folder" else "it is a folder") in captured.err
    assert "training" not in captured.out + captured.err and ".tmp" not in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == (["folder"] if where == "folder" else [])


def test_cli_index_checks_the_store_path_before_embedding(tmp_path, capsys):
    from sklearn_music.cli import main

    store = tmp_path / "missing" / "s.db"
    assert main(["index", str(tmp_path), "--model", "m.skops", "--store", str(store)]) == 1
    assert "cannot write the store to" in capsys.readouterr().err


def test_cli_non_utf8_file_name_is_escaped(odd_music, tmp_path, capsys):
    from sklearn_music.cli import _collection, main

    music, odd_id = odd_music
    escaped = odd_id.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    assert escaped.endswith("caf\\xe9.wav")
    _, ids, _ = _collection(music, labeled=True)
    assert escaped in ids and all(i.encode("utf-8") for i in ids)  # all storable, printable

    store = tmp_path / "s.db"
    vectors = np.random.default_rng(0).normal(size=(len(ids), 4))
    SimilarityStore.build(store, vectors, ids, n_neighbors=3)
    # the file name as the shell passes it (undecodable bytes) and its escaped form
    for track in (odd_id, escaped):
        assert main(["similar", track, "--store", str(store), "-k", "2"]) == 0
        out = capsys.readouterr().out
        assert len(out.splitlines()) == 2
        out.encode("utf-8")  # printable: no lone surrogate reaches stdout
        assert main(["recommend", track, "--store", str(store), "-k", "2"]) == 0
        assert len(capsys.readouterr().out.splitlines()) == 2
