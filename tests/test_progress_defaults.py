"""Progress of long runs (issue 14, item 4): quiet by default as in scikit-learn, and the
documented switches print what docs/user_guide.rst ("Progress of long runs") says."""

import re

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, GroupKFold

from sklearn_music.utils._test_common import tiny_pipeline

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def data():
    pipe, tracks = tiny_pipeline(8)
    return pipe, tracks.data, tracks.genre, np.arange(len(tracks.genre)) % 4


def test_defaults_print_nothing(data, capfd):
    """A grid search of the whole pipeline with default verbosity: no byte on either stream."""
    pipe, X, y, groups = data
    GridSearchCV(pipe, {"embed__embedding_dim": [4, 8]}, cv=GroupKFold(n_splits=2)).fit(
        X, y, groups=groups
    )
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_documented_switches(data, capfd):
    """GridSearchCV(verbose=3): a line per fit with its score and time; the embedder's
    verbose=1 with a validation split: skorch's table with a valid_loss column."""
    pipe, X, y, groups = data
    pipe = pipe.set_params(embed__max_epochs=2)
    search = GridSearchCV(
        pipe, {"embed__embedding_dim": [4, 8]}, cv=GroupKFold(n_splits=2), verbose=3
    )
    search.fit(X, y, groups=groups)
    out = capfd.readouterr().out
    ends = re.findall(r"\[CV \d/2\] END .*score=.*total time=", out)
    assert len(ends) == 4, out
    pipe.set_params(embed__verbose=1, embed__validation_fraction=0.5).fit(X, y)
    out = capfd.readouterr().out
    header = next(line for line in out.splitlines() if "epoch" in line)
    assert "train_loss" in header and "valid_loss" in header
    assert len(re.findall(r"^\s+[12]\s", out, re.M)) == 2  # one row per epoch
