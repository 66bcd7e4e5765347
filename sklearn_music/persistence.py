"""Save and load fitted models without arbitrary code execution on load.

Which format for what
---------------------
:func:`save_model` / :func:`load_model` (``.skops``)
    For sharing: a model file from someone else, a model registry, a download.
    The file is a :mod:`skops.io` archive; loading it builds only objects of
    types on an explicit list (this package's estimators, as
    :func:`~sklearn_music.utils.discovery.all_estimators` lists them,
    scikit-learn estimators, numpy arrays, SciPy CSR matrices and Python
    builtins) and refuses a file that holds anything else with
    :class:`UntrustedTypesError`, naming the types. A file that is not a
    complete, valid model (truncated, a damaged archive or schema, weights
    that are not plain tensors, network parameters that are invalid or do not
    fit the weights) raises :class:`ModelLoadError`, naming the file and the
    cause; the network's parameters are checked before it is built.
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

import ast
import re
import zipfile
from pathlib import Path

from skops.io.exceptions import UntrustedTypesFoundException

from .utils._atomic import atomic_write

__all__ = [
    "ModelLoadError",
    "UntrustedTypesError",
    "load_model",
    "save_model",
    "trusted_types",
]

# Types besides this package's estimators that fitted sklearn_music models hold
# and that are safe to build (no code runs beyond setting attributes; skops
# reads sparse matrices with ``scipy.sparse.load_npz(allow_pickle=False)``).
_EXTRA_TRUSTED = (
    "sklearn.pipeline.Pipeline",
    "numpy.dtype",
    "collections.OrderedDict",
    "builtins.bytes",
    "builtins.slice",
)
_SPARSE_TRUSTED = ("csr_matrix",)


class ModelLoadError(ValueError):
    """A model file that is not a complete, valid model saved by :func:`save_model`.

    Raised by :func:`load_model` for a file that is not a skops archive (a
    pickle, a truncated download), a damaged archive or schema, network
    weights that are not a plain tensor archive, and network parameters that
    are invalid or do not fit the weights (checked before the network is
    built). A subclass of :class:`ValueError`; the message names the file and
    the cause. Types that are not trusted raise :class:`UntrustedTypesError`
    instead.

    Parameters
    ----------
    path : str or path-like
        The file.
    cause : str
        What is wrong with it.

    Attributes
    ----------
    path : str
        The file.
    cause : str
        What is wrong with it.

    Examples
    --------
    >>> from sklearn_music.persistence import ModelLoadError, load_model
    >>> path = getfixture("tmp_path") / "model.skops"
    >>> _ = path.write_bytes(b"PK\x03\x04 cut short")
    >>> try:
    ...     load_model(path)
    ... except ModelLoadError as exc:
    ...     print(exc.cause)
    not a skops model file (made by save_model): File is not a zip file; ...
    """

    def __init__(self, path, cause):
        self.path = str(path)
        self.cause = str(cause)
        super().__init__(f"cannot load the model file {self.path!r}: {self.cause}")

    def __reduce__(self):
        return type(self), (self.path, self.cause)


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

    These are this package's estimators (every class that
    :func:`~sklearn_music.utils.discovery.all_estimators` finds), SciPy's CSR
    matrix and a few container types, in addition to what :mod:`skops.io`
    trusts itself (builtins, numpy arrays, scikit-learn estimators).

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
    import scipy.sparse

    from .utils.discovery import all_estimators

    names = {f"{cls.__module__}.{cls.__qualname__}" for _, cls in all_estimators()}
    for name in _SPARSE_TRUSTED:
        cls = getattr(scipy.sparse, name)
        names.add(f"{cls.__module__}.{cls.__qualname__}")
    return sorted(names | set(_EXTRA_TRUSTED))


def _types_in_message(exc):
    """The type names of a skops ``UntrustedTypesFoundException`` (kept only in its text)."""
    match = re.search(r"Untrusted types found in the file: (\[.*?\])", str(exc))
    if match:
        try:
            types = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError):
            types = None
        if isinstance(types, list) and all(isinstance(t, str) for t in types):
            return types
    return [str(exc)]


def _untrusted_types(path):
    """skops' list of the types in ``path`` it does not trust, or ModelLoadError."""
    import skops.io as sio

    try:
        return set(sio.get_untrusted_types(file=path))
    except zipfile.BadZipFile as exc:
        raise ModelLoadError(
            path,
            "not a skops model file (made by save_model): "
            f"{exc}; pickle/joblib files are not loaded by load_model",
        ) from None
    except Exception as exc:  # a damaged archive or schema: never a raw KeyError
        raise ModelLoadError(path, f"damaged model file ({_describe(exc)})") from None


def _describe(exc):
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
    ModelLoadError
        If the file is not a complete, valid model: not a skops archive,
        truncated or damaged, or with weights or network parameters that are
        invalid (nothing in the file is run or built in that case).

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
    untrusted = _untrusted_types(path)
    refused = untrusted - allowed
    if refused:
        raise UntrustedTypesError(path, refused)
    try:
        return sio.load(path, trusted=sorted(untrusted))
    except UntrustedTypesFoundException as exc:  # defence in depth: skops' own audit
        raise UntrustedTypesError(path, _types_in_message(exc)) from None
    except Exception as exc:  # damaged content, invalid weights or network parameters
        raise ModelLoadError(path, _describe(exc)) from exc
