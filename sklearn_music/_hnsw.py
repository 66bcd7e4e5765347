"""The hnswlib backend of NearestTracks: building an HNSW index, and its plain state.

:func:`build_hnsw` builds an :class:`hnswlib.Index` (hierarchical navigable
small-world graph) over vectors prepared by the caller (L2-normalised for the
cosine metric); :func:`query_hnsw` searches it and returns the candidates'
exact distances, recomputed from the fitted vectors. :func:`hnsw_to_plain` and
:func:`hnsw_from_plain` turn an index into numpy arrays and builtins and back
(hnswlib's own pickled state), so that pickle and :mod:`skops.io` store it
without any hnswlib type. hnswlib is an optional dependency
(``pip install sklearn_music[hnsw]``).
"""

import numpy as np
from sklearn.utils import check_random_state

from ._exact import rank_candidates

__all__ = ["HNSW_METRICS", "build_hnsw", "hnsw_available", "hnsw_from_plain", "hnsw_to_plain"]

# hnswlib's space for each metric it supports ("l2" is the squared distance)
HNSW_METRICS = {"cosine": "ip", "euclidean": "l2"}
_DEFAULTS = {"M": 16, "ef_construction": 200}


def hnsw_available():
    """Whether hnswlib can be imported."""
    try:
        import hnswlib  # noqa: F401
    except ImportError:
        return False
    return True


def _import_hnswlib():
    try:
        import hnswlib
    except ImportError as exc:
        raise ImportError(
            "algorithm='hnsw' needs hnswlib, an optional dependency: "
            "pip install hnswlib (or sklearn_music[hnsw])"
        ) from exc
    return hnswlib


def _threads(n_jobs):
    return -1 if n_jobs is None else int(n_jobs)


def build_hnsw(vectors, *, metric, index_params, random_state, n_jobs):
    """An :class:`hnswlib.Index` over ``vectors`` (float32, 2-D, unit rows for cosine).

    ``index_params`` may set ``M`` (graph degree, default 16) and
    ``ef_construction`` (build-time search breadth, default 200).
    """
    hnswlib = _import_hnswlib()
    if metric not in HNSW_METRICS:
        raise ValueError(
            f"algorithm='hnsw' supports metric in {sorted(HNSW_METRICS)}, got "
            f"metric={metric!r}; use algorithm='nndescent' or 'brute'"
        )
    params = dict(_DEFAULTS)
    for key, value in (index_params or {}).items():
        if key not in _DEFAULTS:
            raise ValueError(
                f"index_params={index_params!r}: algorithm='hnsw' accepts only the keys "
                f"{sorted(_DEFAULTS)}, not {key!r}"
            )
        params[key] = int(value)
    n, dim = vectors.shape
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    index = hnswlib.Index(space=HNSW_METRICS[metric], dim=dim)
    index.init_index(
        max_elements=n, M=params["M"], ef_construction=params["ef_construction"], random_seed=seed
    )
    index.add_items(vectors, np.arange(n), num_threads=_threads(n_jobs))
    return index


def query_hnsw(index, Q, vectors, k, *, ef, metric, n_jobs):
    """The ``k`` nearest fitted rows of each query: exact distances, sorted.

    Parameters
    ----------
    index : hnswlib.Index
        Built by :func:`build_hnsw` on ``vectors``.
    Q : ndarray of shape (n_queries, n_features)
        Prepared queries (unit rows for cosine).
    vectors : ndarray of shape (n_fitted, n_features)
        The fitted vectors, to recompute the distances of the candidates.
    k : int
        Number of neighbours.
    ef : int
        Search breadth (at least ``k`` is used).
    metric : {"cosine", "euclidean"}
        The metric.
    n_jobs : int or None
        Query threads.

    Returns
    -------
    distances, indices : ndarray of shape (n_queries, k)
        float64 distances and ``intp`` rows, by increasing distance.
    """
    index.set_ef(max(int(ef), k))
    labels, _ = index.knn_query(
        np.ascontiguousarray(Q, dtype=np.float32), k=k, num_threads=_threads(n_jobs)
    )
    return rank_candidates(Q, vectors, labels.astype(np.intp), metric=metric, k=k)


def hnsw_to_plain(index):
    """An hnswlib index's state as numpy arrays and builtins."""
    (params,) = index.__getstate__()
    return {"hnswlib_state": dict(params)}


def hnsw_from_plain(plain):
    """Rebuild an :class:`hnswlib.Index` from :func:`hnsw_to_plain`'s output."""
    hnswlib = _import_hnswlib()
    # owned, writeable copies (also from read-only memory maps)
    params = {
        key: np.array(value) if isinstance(value, np.ndarray) else value
        for key, value in plain["hnswlib_state"].items()
    }
    index = hnswlib.Index.__new__(hnswlib.Index)
    index.__setstate__((params,))
    return index
