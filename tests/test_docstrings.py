"""Every public name has a numpydoc docstring with the sections a reader needs."""

import importlib
import inspect

import pytest
from numpydoc.docscrape import ClassDoc, FunctionDoc

PUBLIC_MODULES = [
    "sklearn_music",
    "sklearn_music.io",
    "sklearn_music.datasets",
    "sklearn_music.metrics",
    "sklearn_music.store",
    "sklearn_music.persistence",
    "sklearn_music.coldstart",
    "sklearn_music.utils.discovery",
]


def _public_objects():
    seen = set()
    for mod_name in PUBLIC_MODULES:
        module = importlib.import_module(mod_name)
        for name in module.__all__:
            if name.startswith("__"):
                continue
            obj = getattr(module, name)
            if id(obj) in seen or not callable(obj):
                continue
            seen.add(id(obj))
            yield f"{mod_name}.{name}", obj


def _own_methods(cls):
    for name, member in vars(cls).items():
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        yield name, member


@pytest.mark.parametrize(
    "qualname, obj", list(_public_objects()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_numpydoc_sections(qualname, obj):
    if inspect.isclass(obj):
        doc = ClassDoc(obj)
        assert doc["Summary"], f"{qualname}: no summary line"
        # exceptions take the message (builtin signature): no Parameters section
        has_params = (
            not issubclass(obj, BaseException) and len(inspect.signature(obj).parameters) > 0
        )
        if has_params:
            assert doc["Parameters"], f"{qualname}: no Parameters section"
        assert doc["Examples"], f"{qualname}: no Examples section"
        for name, method in _own_methods(obj):
            mdoc = FunctionDoc(method)
            assert mdoc["Summary"], f"{qualname}.{name}: no summary line"
            params = [p for p in inspect.signature(method).parameters if p != "self"]
            if params:
                assert mdoc["Parameters"], f"{qualname}.{name}: no Parameters section"
            if not name.startswith("set_"):
                assert mdoc["Returns"] or mdoc["Yields"], f"{qualname}.{name}: no Returns section"
    else:
        doc = FunctionDoc(obj)
        assert doc["Summary"], f"{qualname}: no summary line"
        if inspect.signature(obj).parameters:
            assert doc["Parameters"], f"{qualname}: no Parameters section"
        assert doc["Returns"] or doc["Yields"], f"{qualname}: no Returns section"
        assert doc["Examples"], f"{qualname}: no Examples section"
