"""save_model / load_model: safe round trips, untrusted types refused."""

import pickle

import numpy as np
import pytest
import skops.io as sio
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sklearn_music.persistence import (
    UntrustedTypesError,
    load_model,
    save_model,
    trusted_types,
)


class Payload:
    """An arbitrary class: building it from a file would run its __setstate__."""

    marker = None

    def __setstate__(self, state):
        # what a malicious object could do on load
        with open(state["marker"], "w") as f:
            f.write("code ran on load")


def test_sklearn_pipeline_round_trip(tmp_path, rng):
    X = rng.normal(size=(30, 4))
    model = make_pipeline(StandardScaler(), NearestNeighbors(algorithm="brute", n_neighbors=3)).fit(
        X
    )
    path = save_model(model, tmp_path / "m.skops")
    assert [p.name for p in tmp_path.iterdir()] == ["m.skops"]  # no temp left
    loaded = load_model(path)
    assert isinstance(loaded, Pipeline)
    np.testing.assert_array_equal(loaded[0].transform(X), model[0].transform(X))
    d0, i0 = model[-1].kneighbors(model[0].transform(X))
    d1, i1 = loaded[-1].kneighbors(loaded[0].transform(X))
    np.testing.assert_array_equal(i0, i1)
    np.testing.assert_array_equal(d0, d1)


def test_failed_save_keeps_previous_file(tmp_path):
    path = save_model(StandardScaler().fit([[0.0], [2.0]]), tmp_path / "m.skops")
    before = path.read_bytes()
    broken = StandardScaler().fit([[0.0], [4.0]])
    broken.extra_ = (x for x in [])  # a generator: skops cannot save it
    with pytest.raises(TypeError, match="generator"):
        save_model(broken, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.skops"]  # no temp left
    assert load_model(path).mean_ == pytest.approx([1.0])


def test_untrusted_class_refused(tmp_path):
    marker = tmp_path / "pwned"
    payload = Payload.__new__(Payload)
    payload.__dict__["marker"] = str(marker)
    Payload.__getstate__ = lambda self: {"marker": self.marker}
    try:
        path = tmp_path / "evil.skops"
        sio.dump({"model": StandardScaler().fit([[0.0], [1.0]]), "x": payload}, path)
    finally:
        del Payload.__getstate__
    name = f"{Payload.__module__}.Payload"
    with pytest.raises(UntrustedTypesError, match=f"evil.skops.*{name}") as info:
        load_model(path)
    assert isinstance(info.value, TypeError)
    assert info.value.types == [name]
    assert not marker.exists()  # nothing was built
    # trusting the type explicitly is the caller's decision, and then it loads
    load_model(path, trusted=[name])
    assert marker.read_text() == "code ran on load"


def test_untrusted_function_refused(tmp_path):
    import os

    model = FunctionTransformer(func=os.system)
    path = tmp_path / "f.skops"
    sio.dump(model, path)
    with pytest.raises(UntrustedTypesError, match="system"):
        load_model(path)


def test_pickle_file_refused(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(StandardScaler()))
    with pytest.raises(ValueError, match="not a skops model file"):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="nothing.skops"):
        load_model(tmp_path / "nothing.skops")
    with pytest.raises(TypeError, match="qualified type names"):
        load_model(path, trusted="builtins.eval")


def test_trusted_types_are_explicit():
    names = trusted_types()
    assert "sklearn_music._embedder.ConvEmbedder" in names
    assert "sklearn.pipeline.Pipeline" in names
    assert not any(n.startswith(("torch.", "skorch.", "pynndescent.", "numba.")) for n in names)


# --------------------------------------------------------------------------- #
# the package's own pipeline
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def fitted_pipeline():
    from sklearn_music.utils._test_common import tiny_pipeline

    model, tracks = tiny_pipeline(8)
    model.fit(tracks.data, tracks.genre)
    return model, tracks.data


def test_pipeline_round_trip_identical_embeddings(tmp_path, fitted_pipeline):
    model, X = fitted_pipeline
    path = save_model(model, tmp_path / "model.skops")
    untrusted = set(sio.get_untrusted_types(file=path))
    assert untrusted <= set(trusted_types()), untrusted - set(trusted_types())
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded[:-1].transform(X), model[:-1].transform(X))
    E = model[:-1].transform(X)
    d0, i0 = model[-1].kneighbors(E)
    d1, i1 = loaded[-1].kneighbors(E)
    np.testing.assert_array_equal(i0, i1)
    np.testing.assert_allclose(d0, d1, rtol=1e-6)


def test_cuda_model_loads_on_cpu(tmp_path, fitted_pipeline):
    """A model saved with device="cuda" loads and runs on a CPU-only machine.

    Without a GPU here, the fitted CPU model is marked as a CUDA one (the
    ``device`` parameter and the skorch net's device) before saving; the
    weights in the file are CPU tensors either way (the embedder saves them
    with ``map_location``-free ``torch.save`` of CPU copies and loads them with
    ``map_location="cpu"``).
    """
    import copy

    import torch

    if torch.cuda.is_available():
        pytest.skip("this checks loading on a machine without CUDA")
    model, X = fitted_pipeline
    cuda_model = copy.deepcopy(model)
    embed = cuda_model.named_steps["embed"]
    embed.device = "cuda"
    embed.net_.device = "cuda"
    path = save_model(cuda_model, tmp_path / "cuda.skops")
    with pytest.warns(UserWarning, match="(?i)cuda"):
        loaded = load_model(path)
    net = loaded.named_steps["embed"].net_
    assert next(net.module_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(loaded[:-1].transform(X), model[:-1].transform(X))
