"""The pretrained model shipped as package data, and sklearn_music.embed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

import sklearn_music
from sklearn_music import NearestTracks, embed
from sklearn_music.datasets import make_tracks
from sklearn_music.pretrained import available_models, load

WEIGHTS = Path(sklearn_music.__file__).parent / "pretrained" / "soundtracks-v1.pt"


@pytest.fixture(scope="module")
def tracks():
    return make_tracks(16, n_genres=4, n_artists_per_genre=2, duration=4.0, random_state=0)


@pytest.fixture(scope="module")
def pipe():
    return load("soundtracks-v1", n_jobs=1)


@pytest.fixture(scope="module")
def vectors(pipe, tracks):
    return pipe.transform(tracks.data)


def test_weights_are_small_package_data():
    assert WEIGHTS.exists()
    assert WEIGHTS.stat().st_size < 10 * 2**20
    assert available_models() == ["soundtracks-v1"]


def test_load_gives_a_fitted_pipeline(pipe, vectors, tracks):
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(pipe)
    embedder = pipe[-1].estimator
    assert embedder.targets_ == [] and embedder.n_features_in_ == 128
    assert vectors.shape == (len(tracks.data), 128) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    # not degenerate: the tracks get different vectors
    assert np.linalg.matrix_rank(vectors) > 8


def test_vectors_identical_across_loads(pipe, vectors, tracks):
    again = load("soundtracks-v1", n_jobs=1).transform(tracks.data)
    np.testing.assert_array_equal(again, vectors)


_FRESH = """
import json, socket, sys
import numpy as np
def no_network(*args, **kwargs):
    raise OSError("network access in a test of the pretrained model")
socket.socket.connect = no_network
socket.create_connection = no_network
from sklearn_music.datasets import make_tracks
from sklearn_music.pretrained import load
tracks = make_tracks(16, n_genres=4, n_artists_per_genre=2, duration=4.0, random_state=0)
v = load("soundtracks-v1", n_jobs=1).transform(tracks.data)
json.dump(v.astype(float).tolist(), sys.stdout)
"""


def test_loads_in_a_fresh_process_without_network(vectors):
    env = dict(os.environ, PYTHONPATH=str(Path(sklearn_music.__file__).parents[1]))
    out = subprocess.run(
        [sys.executable, "-c", _FRESH], env=env, capture_output=True, text=True, check=True
    )
    fresh = np.array(json.loads(out.stdout), dtype=np.float32)
    np.testing.assert_array_equal(fresh, vectors)


def test_in_a_pipeline_with_nearest_tracks(pipe, vectors, tracks):
    full = Pipeline([*pipe.steps, ("nn", NearestTracks(n_neighbors=3, algorithm="brute"))])
    full.fit(tracks.data, tracks.genre)
    _, idx = full[-1].kneighbors(n_neighbors=3)
    # the index holds exactly the pretrained vectors
    _, ref = NearestTracks(n_neighbors=3, algorithm="brute").fit(vectors).kneighbors()
    np.testing.assert_array_equal(idx, ref)
    assert full.predict(tracks.data[:2]).shape == (2,)


def test_in_grid_search_keeps_the_weights(pipe, vectors, tracks):
    full = Pipeline([*pipe.steps, ("nn", NearestTracks(algorithm="brute"))])
    grid = GridSearchCV(full, {"nn__n_neighbors": [1, 3]}, cv=2)
    grid.fit(tracks.data, tracks.genre)
    assert grid.best_params_["nn__n_neighbors"] in (1, 3)
    best = grid.best_estimator_
    np.testing.assert_array_equal(best[:-1].transform(tracks.data), vectors)
    # clone keeps the pretrained (frozen) embedder
    np.testing.assert_array_equal(
        clone(pipe)[-1].transform(pipe[0].transform(tracks.data)), vectors
    )


def test_embed_arrays_paths_and_resampling(vectors, tracks, tmp_path):
    import soundfile as sf

    from sklearn_music import load_audio

    np.testing.assert_array_equal(embed(tracks.data[:3], n_jobs=1), vectors[:3])
    path = tmp_path / "one.wav"
    sf.write(path, tracks.data[0], 16000, subtype="FLOAT")
    # one track alone: the same numbers up to float32 summation order
    np.testing.assert_allclose(embed(path, n_jobs=1), vectors[:1], atol=1e-5)
    np.testing.assert_allclose(embed([str(path)], n_jobs=1), vectors[:1], atol=1e-5)
    wave44 = load_audio(tracks.data[1], sr=44100, orig_sr=16000)
    expected = load("soundtracks-v1").transform([load_audio(wave44, sr=16000, orig_sr=44100)])
    np.testing.assert_allclose(embed([wave44], sr=44100, n_jobs=1), expected, rtol=1e-6)


def test_embed_rejects(tmp_path):
    with pytest.raises(ValueError, match="applies to waveforms"):
        embed([str(tmp_path / "x.wav")], sr=44100)
    with pytest.raises(ValueError, match="1-D array"):
        embed(np.zeros(16000, dtype=np.float32))
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError):
        load("no-such-model")
