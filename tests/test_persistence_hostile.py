"""load_model against truncated, damaged and crafted model files.

Each must raise ModelLoadError (or UntrustedTypesError for untrusted types)
naming the file and the cause, never run code from the file, never build a
network from parameters it has not checked, and never suggest
``weights_only=False``.
"""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import skops.io as sio

from sklearn_music.persistence import (
    ModelLoadError,
    UntrustedTypesError,
    load_model,
    save_model,
    trusted_types,
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small fitted mel -> embed pipeline, saved, and its embeddings."""
    from sklearn_music.utils._test_common import tiny_pipeline

    model, tracks = tiny_pipeline(6, index=False)
    model.fit(tracks.data, tracks.genre)
    path = save_model(model, tmp_path_factory.mktemp("model") / "model.skops")
    return path, tracks.data, model.transform(tracks.data)


def _members(path):
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def _write(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _embedder_state(schema):
    """The ConvEmbedder's state dict in a skops schema (found by its class)."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("__class__") == "ConvEmbedder":
                return node["content"]["content"]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise AssertionError("no ConvEmbedder in the schema")


def _edited(saved, tmp_path, edit):
    """A copy of the saved model with ``edit(schema, members, state)`` applied."""
    members = _members(saved[0])
    schema = json.loads(members["schema.json"])
    edit(schema, members, _embedder_state(schema))
    members["schema.json"] = json.dumps(schema).encode()
    return _write(tmp_path / "crafted.skops", members)


def _weights_name(state):
    return state["_net_weights"]["file"]


def _assert_refused(path, match, error=ModelLoadError):
    with pytest.raises(error, match=match) as info:
        load_model(path)
    message = str(info.value)
    assert str(path) in message and info.value.path == str(path)
    assert "weights_only=False" not in message
    cause = info.value.__cause__
    while cause is not None:  # nor anywhere in the chained tracebacks
        assert "weights_only=False" not in str(cause)
        cause = cause.__cause__
    return info.value


def test_saved_model_loads(saved):
    path, X, E = saved
    np.testing.assert_array_equal(load_model(path).transform(X), E)


# --------------------------------------------------------------------------- #
# damaged archives
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.3, 0.6, 0.9, 0.99, 0.9999])
def test_truncated_model(saved, tmp_path, fraction):
    data = saved[0].read_bytes()
    path = tmp_path / "cut.skops"
    path.write_bytes(data[: int(len(data) * fraction)])
    _assert_refused(path, "not a skops model file|damaged")


@pytest.mark.parametrize(
    "schema, match",
    [
        (b"{not json", "damaged model file.*JSONDecodeError"),
        (b"[1, 2, 3]", "damaged model file"),
        (b'{"__class__": "Pipeline"}', "damaged model file"),
        (b"\xff\xfe\x00", "damaged model file"),
    ],
    ids=["not-json", "a-list", "no-content", "not-utf8"],
)
def test_damaged_schema(saved, tmp_path, schema, match):
    members = _members(saved[0])
    members["schema.json"] = schema
    _assert_refused(_write(tmp_path / "bad.skops", members), match)


def test_missing_member_and_schema(saved, tmp_path):
    members = _members(saved[0])
    weights = next(n for n in members if n.endswith(".bin"))
    _assert_refused(
        _write(
            tmp_path / "a.skops",
            {n: d for n, d in members.items() if n != weights},
        ),
        "damaged model file",
    )
    _assert_refused(
        _write(tmp_path / "b.skops", {n: d for n, d in members.items() if n != "schema.json"}),
        "damaged model file",
    )


# --------------------------------------------------------------------------- #
# bad and hostile weights
# --------------------------------------------------------------------------- #
class _RunsCode:
    """Unpickling this calls os.system: what a hostile weights file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _torch_bytes(obj):
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _reshaped(real):
    """The real weights, as many numbers, but one tensor flattened."""
    import torch

    tensors = torch.load(io.BytesIO(real), weights_only=True)
    name = next(k for k, v in tensors.items() if v.ndim > 1)
    tensors[name] = tensors[name].flatten()
    return _torch_bytes(tensors)


def _weights_cases(marker):
    import torch

    return {
        "garbage": (b"not a tensor archive", "not a plain tensor archive"),
        "empty": (b"", "not a plain tensor archive"),
        "pickle-runs-code": (pickle.dumps(_RunsCode(marker)), "not a plain tensor archive"),
        "torch-save-runs-code": (
            _torch_bytes({"w": _RunsCode(marker)}),
            "not a plain tensor archive",
        ),
        "a-list": (_torch_bytes([torch.zeros(2)]), "not a dict of named tensors"),
        "wrong-shapes": (_reshaped, "do not fit"),
    }


@pytest.mark.parametrize(
    "case",
    ["garbage", "empty", "pickle-runs-code", "torch-save-runs-code", "a-list", "wrong-shapes"],
)
def test_bad_or_hostile_weights(saved, tmp_path, case):
    marker = tmp_path / "pwned"
    data, match = _weights_cases(marker)[case]

    def edit(schema, members, state):
        name = _weights_name(state)
        members[name] = data(members[name]) if callable(data) else data

    error = _assert_refused(_edited(saved, tmp_path, edit), match)
    assert not marker.exists(), "code from the file ran"
    assert "weights" in error.cause


def test_truncated_weights(saved, tmp_path):
    def edit(schema, members, state):
        name = _weights_name(state)
        members[name] = members[name][: len(members[name]) // 2]

    _assert_refused(_edited(saved, tmp_path, edit), "not a plain tensor archive")


# --------------------------------------------------------------------------- #
# injected network parameters: refused before the network is built
# --------------------------------------------------------------------------- #
_ids = iter(range(10**15, 10**16))


def _set(node, json_text):
    """Give a JsonNode a new value, and a fresh ``__id__`` (skops reuses the object
    of an ``__id__`` it has already built)."""
    node["content"] = json_text
    node["__id__"] = next(_ids)


NET_INIT_EDITS = [
    ("module__n_mels", '"16"', "module__n_mels.*'16'"),
    ("module__n_mels", "16.5", "module__n_mels"),
    ("module__n_mels", "true", "module__n_mels"),
    ("module__n_filters", "1000000000000", "module__n_filters"),
    ("module__n_filters", "4096", "network of at least .* weights, but the file holds"),
    ("module__embedding_dim", "60000", "network of at least"),
    ("module__n_conv", "0", "module__n_conv"),
    ("module__n_conv", "-3", "module__n_conv"),
    ("batch_size", "-1", "batch_size"),
    ("module__aggregate", '"evil"', "module__aggregate"),
    ("pad_mode", "null", "pad_mode"),
    ("module__dropout", "2.0", "module__dropout"),
    ("lr", '"fast"', "'lr'"),
    ("patch_seed", "-1", "patch_seed"),
]


@pytest.mark.parametrize(
    "key, value, match", NET_INIT_EDITS, ids=[f"{k}={v}" for k, v, _ in NET_INIT_EDITS]
)
def test_injected_net_init_values(saved, tmp_path, key, value, match):
    def edit(schema, members, state):
        _set(state["_net_init"]["content"][key], value)

    error = _assert_refused(_edited(saved, tmp_path, edit), match)
    assert "saved network's parameters are invalid" in error.cause


def test_injected_net_init_structure(saved, tmp_path):
    def rename(schema, members, state):  # an unknown key, a known one missing
        content = state["_net_init"]["content"]
        content["iterator_train__num_workers"] = content.pop("patch_seed")

    _assert_refused(_edited(saved, tmp_path, rename), "unknown keys.*num_workers.*patch_seed")

    def huge_list(schema, members, state):
        node = state["_net_init"]["content"]["module__hidden_units"]
        _set(node["content"][0], "65536")
        node["content"] = node["content"] * 50
        node["__id__"] = next(_ids)

    _assert_refused(_edited(saved, tmp_path, huge_list), "network of at least")

    def heads(schema, members, state):
        state["_net_init"]["content"]["criterion__heads"]["content"][0]["content"] = [
            {
                "__class__": "str",
                "__module__": "builtins",
                "__loader__": "JsonNode",
                "content": '"evil"',
                "is_json": True,
                "__id__": 1,
            }
        ]

    _assert_refused(_edited(saved, tmp_path, heads), "criterion__heads")

    def not_a_dict(schema, members, state):
        state["_net_init"] = {
            "__class__": "str",
            "__module__": "builtins",
            "__loader__": "JsonNode",
            "content": '"x"',
            "is_json": True,
            "__id__": 2,
        }

    _assert_refused(_edited(saved, tmp_path, not_a_dict), "_net_init is a str")


def test_bad_history_json(saved, tmp_path):
    def edit(schema, members, state):
        _set(state["_net_history"], json.dumps("[{not json"))

    _assert_refused(_edited(saved, tmp_path, edit), "history is not valid JSON")


# --------------------------------------------------------------------------- #
# trusted types: the package's own estimators, and skops' audit as a second check
# --------------------------------------------------------------------------- #
def test_implicit_factors_round_trip(tmp_path):
    from sklearn_music import ImplicitFactors

    history = {"ann": ["a", "b"], "bob": ["b", "c"], "cid": ["a", "c", "d"]}
    model = ImplicitFactors(n_factors=2, random_state=0).fit(history)
    path = save_model(model, tmp_path / "factors.skops")
    assert set(sio.get_untrusted_types(file=path)) <= set(trusted_types())
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.item_factors_, model.item_factors_)
    assert (loaded.user_items_ != model.user_items_).nnz == 0
    assert loaded.recommend("ann", n=2)[0].tolist() == model.recommend("ann", n=2)[0].tolist()


def test_every_package_estimator_is_trusted():
    from sklearn_music.utils.discovery import all_estimators

    names = trusted_types()
    for _, cls in all_estimators():
        assert f"{cls.__module__}.{cls.__qualname__}" in names


def test_skops_audit_refusal_names_the_types(tmp_path, monkeypatch):
    """If skops' own audit at load time refuses a type that the first check missed,
    the error lists the type names (not the characters of skops' message)."""
    import os as os_module

    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "f.skops"
    sio.dump(FunctionTransformer(func=os_module.system), path)
    # simulate a first check that misses the type (the case this branch exists for)
    monkeypatch.setattr(sio, "get_untrusted_types", lambda file: [])
    error = _assert_refused(path, "posix.system|os.system", UntrustedTypesError)
    assert error.types in (["posix.system"], ["os.system"])


# --------------------------------------------------------------------------- #
# saving through a symbolic link
# --------------------------------------------------------------------------- #
def test_save_through_symlink_replaces_target(tmp_path):
    from sklearn.preprocessing import StandardScaler

    real = tmp_path / "models" / "m.skops"
    real.parent.mkdir()
    save_model(StandardScaler().fit([[0.0], [2.0]]), real)
    link = tmp_path / "current.skops"
    link.symlink_to(real)
    save_model(StandardScaler().fit([[0.0], [4.0]]), link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert load_model(real).mean_ == pytest.approx([2.0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current.skops", "models"]
    assert [p.name for p in real.parent.iterdir()] == ["m.skops"]
