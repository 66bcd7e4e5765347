"""Save and load fitted models without arbitrary code execution on load.

Which format for what
---------------------
:func:`save_model` / :func:`load_model` (``.skops``)
    For sharing: a model file from someone else, a model registry, a download.
    The file is a :mod:`skops.io` archive; loading it builds only objects of
    types on an explicit list (this package's estimators, scikit-learn
    estimators, numpy arrays and Python builtins) and refuses a file that
    holds anything else with :class:`UntrustedTypesError`, naming the types.
    The embedder's network weights are stored as a ``torch.save`` archive of
    tensors inside the file and read back with ``torch.load(weights_only=True,
    map_location="cpu")``, so a model trained with ``device="cuda"`` loads on a
    machine without a GPU.
:mod:`pickle` / :func:`joblib.dump`
    For your own files only (caching, checkpoints between your own runs):
    loading a pickle runs whatever code the file names. Never load a pickle
    you did not write.
:class:`~sklearn_music.store.SimilarityStore` (``.db``)
    For serving: the vectors and precomputed similar tracks, not the model.

The estimators keep their state in plain attributes (numpy arrays, builtins);
:class:`~sklearn_music.ConvEmbedder` turns its skorch network into its weights
(bytes) and the plain values needed to rebuild it in ``__getstate__``, and
rebuilds it in ``__setstate__``; both pickle and :func:`save_model` use that.
"""

import zipfile
from pathlib import Path

from skops.io.exceptions import UntrustedTypesFoundException

from .utils._atomic import atomic_write

__all__ = ["UntrustedTypesError", "load_model", "save_model", "trusted_types"]

# This package's estimators: built with ``cls.__new__`` and ``__setstate__``;
# their state holds only the types below (see the module docstring).
_ESTIMATORS = (
    "sklearn_music._mel.MelSpectrogramTransformer",
    "sklearn_music._baseline.MFCCStatistics",
    "sklearn_music._embedder.ConvEmbedder",
    "sklearn_music._neighbors.NearestTracks",
)

# Types besides this package's estimators that fitted sklearn_music models hold
# and that are safe to build (no code runs beyond setting attributes).
_EXTRA_TRUSTED = (
    "sklearn.pipeline.Pipeline",
    "numpy.dtype",
    "collections.OrderedDict",
    "builtins.bytes",
    "builtins.slice",
)


class UntrustedTypesError(UntrustedTypesFoundException):
    """A model file holds types that :func:`load_model` does not trust.

    A subclass of skops' ``UntrustedTypesFoundException`` (a :class:`TypeError`).
    The ``types`` attribute lists the refused types' qualified names.

    Parameters
    ----------
    path : str
        The file.
    types : list of str
        The untrusted types found in it.

    Examples
    --------
    >>> from sklearn_music.persistence import UntrustedTypesError
    >>> err = UntrustedTypesError("m.skops", ["os.system"])
    >>> err.types
    ['os.system']
    """

    def __init__(self, path, types):
        self.path = str(path)
        self.types = sorted(types)
        TypeError.__init__(
            self,
            f"refusing to load {self.path!r}: it contains types that are not "
            f"trusted: {', '.join(self.types)}. If you trust the file's source and "
            "have checked these types, pass them as load_model(path, trusted=[...])",
        )


def trusted_types():
    """List the types that :func:`load_model` trusts by default.

    These are this package's estimators and a few container types, in addition
    to what :mod:`skops.io` trusts itself (builtins, numpy arrays, scikit-learn
    estimators).

    Returns
    -------
    types : list of str
        Qualified type names.

    Examples
    --------
    >>> from sklearn_music.persistence import trusted_types
    >>> "sklearn_music._mel.MelSpectrogramTransformer" in trusted_types()
    True
    """
    return sorted(_ESTIMATORS + _EXTRA_TRUSTED)


def save_model(model, path):
    """Save a fitted model (a Pipeline or an estimator) in the skops format.

    The file is written to a temporary name in the same directory, flushed to
    disk and renamed onto ``path`` when complete, so an existing file is
    replaced only by a complete one (an error or an interruption leaves it,
    and no temporary file, behind).

    Parameters
    ----------
    model : estimator or Pipeline
        The fitted model.
    path : str or path-like
        The file to write (conventionally ``*.skops``).

    Returns
    -------
    path : pathlib.Path
        The file written.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn.neighbors import NearestNeighbors
    >>> from sklearn_music.persistence import save_model, load_model
    >>> X = np.random.default_rng(0).normal(size=(20, 3))
    >>> model = make_pipeline(StandardScaler(), NearestNeighbors(algorithm="brute"))
    >>> model = model.fit(X)
    >>> path = save_model(model, getfixture("tmp_path") / "model.skops")
    >>> loaded = load_model(path)
    >>> bool(np.allclose(loaded[0].transform(X), model[0].transform(X)))
    True
    """
    import skops.io as sio

    path = Path(path)
    with atomic_write(path) as tmp:
        sio.dump(model, tmp)
    return path


def load_model(path, *, trusted=None):
    """Load a model saved with :func:`save_model`, refusing untrusted types.

    Nothing in the file is built until every type in it has been checked
    against :func:`trusted_types` plus ``trusted``.

    Parameters
    ----------
    path : str or path-like
        The ``.skops`` file.
    trusted : list of str, default=None
        Qualified type names to trust in addition to :func:`trusted_types`.
        Pass only names you have checked, e.g. from
        :func:`skops.io.get_untrusted_types`.

    Returns
    -------
    model : object
        The loaded model.

    Raises
    ------
    UntrustedTypesError
        If the file holds a type that is not trusted.
    ValueError
        If the file is not a skops archive.

    Examples
    --------
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_music.persistence import save_model, load_model
    >>> path = save_model(StandardScaler().fit([[0.0], [2.0]]),
    ...                   getfixture("tmp_path") / "scaler.skops")
    >>> load_model(path).mean_
    array([1.])
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    if trusted is not None and (
        isinstance(trusted, (str, bytes)) or not all(isinstance(t, str) for t in trusted)
    ):
        raise TypeError(f"trusted must be a list of qualified type names, got {trusted!r}")
    allowed = set(trusted_types()) | set(trusted or ())
    try:
        untrusted = set(sio.get_untrusted_types(file=path))
    except zipfile.BadZipFile:
        raise ValueError(
            f"{str(path)!r} is not a skops model file (made by save_model); "
            "pickle/joblib files are not loaded by load_model"
        ) from None
    refused = untrusted - allowed
    if refused:
        raise UntrustedTypesError(path, refused)
    try:
        return sio.load(path, trusted=sorted(untrusted))
    except UntrustedTypesFoundException as exc:  # defence in depth
        raise UntrustedTypesError(path, getattr(exc, "args", [[]])[0]) from None
