"""Discovery of the estimators that :mod:`sklearn_music` defines."""

import importlib
import inspect

from sklearn.base import BaseEstimator

__all__ = ["all_estimators"]

_ESTIMATOR_MODULES = (
    "_mel",
    "_baseline",
    "_embedder",
    "_multimodal",
    "_neighbors",
    "_factors",
)


def all_estimators():
    """List the public estimators of :mod:`sklearn_music`.

    Every private estimator module of the package is imported and searched for
    public :class:`~sklearn.base.BaseEstimator` subclasses, so a new estimator is
    picked up by the common tests without registering it anywhere.

    Returns
    -------
    estimators : list of (str, type)
        ``(name, class)`` pairs sorted by name.

    Examples
    --------
    >>> from sklearn_music.utils.discovery import all_estimators
    >>> "MelSpectrogramTransformer" in dict(all_estimators())
    True
    """
    found = {}
    for mod_name in _ESTIMATOR_MODULES:
        try:
            module = importlib.import_module(f"sklearn_music.{mod_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"sklearn_music.{mod_name}":
                continue  # module not written yet
            raise
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, BaseEstimator)
                and not name.startswith("_")
                and cls.__module__ == module.__name__
            ):
                found[name] = cls
    return sorted(found.items())
