"""Models saved by an earlier release still load and give the same vectors.

``tests/data/pipeline_v0_1_0.*`` were written by sklearn_music 0.1.0.dev0 (before the
architecture pass): a fitted ``Pipeline(mel, embed, nn)`` as a ``.skops`` file and as a
pickle, with the embeddings and neighbours it gave on ``make_tracks`` data recorded in
the JSON file. A change that breaks the saved format fails here.
"""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from sklearn_music.datasets import make_tracks
from sklearn_music.persistence import load_model

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def recorded():
    with open(DATA / "pipeline_v0_1_0.json") as fh:
        return json.load(fh)


def _load_pickle(path):
    with open(path, "rb") as fh:  # our own fixture: a trusted pickle
        return pickle.load(fh)


@pytest.mark.parametrize(
    "load",
    [
        lambda: load_model(DATA / "pipeline_v0_1_0.skops"),
        lambda: _load_pickle(DATA / "pipeline_v0_1_0.pkl"),
    ],
    ids=["skops", "pickle"],
)
def test_model_saved_by_0_1_0_loads_and_embeds_the_same(load, recorded):
    pipe = load()
    # parameters and attributes added since are those of a model from random weights
    assert pipe[1].init is None and pipe[1].init_ is None
    tracks = make_tracks(**recorded["make_tracks"])
    E = pipe[:-1].transform(tracks.data)
    np.testing.assert_allclose(E, np.array(recorded["embeddings"]), atol=1e-5)
    _, ind = pipe[-1].kneighbors()
    np.testing.assert_array_equal(ind, np.array(recorded["neighbors"]))
