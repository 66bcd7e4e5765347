"""The pynndescent backend of NearestTracks: building an index, and its plain state.

:func:`build_index` builds a :class:`pynndescent.NNDescent` over vectors that the
caller has already prepared (L2-normalised for the cosine metric), so that the
distances :class:`~sklearn_music.NearestTracks` reports never depend on what
pynndescent does to its data internally. :func:`nndescent_to_plain` and
:func:`nndescent_from_plain` turn an index into arrays and builtins and back
(pickling, skops, read-only memory maps).
"""

import numpy as np
from scipy import sparse
from sklearn.preprocessing import normalize
from sklearn.utils import check_random_state

# pynndescent's name for each metric (same distances as scipy / sklearn)
_NND_METRIC = {"cosine": "cosine", "euclidean": "euclidean", "manhattan": "manhattan"}
# numba-compiled functions in an NNDescent's state; NNDescent.__setstate__ rebuilds them
_NND_FUNCTIONS = (
    "_distance_func",
    "_distance_correction",
    "_deheap_function",
    "_rerank_function",
    "_true_distance_func",
)


def build_index(vectors, *, metric, index_params, random_state, n_jobs, verbose):
    """A prepared :class:`pynndescent.NNDescent` over ``vectors`` (float32, 2-D)."""
    try:
        from pynndescent import NNDescent
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError(
            "algorithm='nndescent' needs pynndescent: pip install pynndescent"
        ) from exc
    params = dict(index_params or {})
    for key in ("metric", "random_state", "n_jobs", "verbose"):
        if key in params:
            raise ValueError(
                f"index_params may not set {key!r}: it is NearestTracks' own parameter {key}"
            )
    n = vectors.shape[0]
    if n < 2:
        raise ValueError(
            f"algorithm='nndescent' needs at least 2 fitted tracks, got n_samples={n}; "
            "use algorithm='brute'"
        )
    params["n_neighbors"] = min(int(params.get("n_neighbors", 30)), n - 1)
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    index = NNDescent(
        vectors.copy(),  # the index may reorder or rescale its data: keep ours intact
        metric=_NND_METRIC[metric],
        random_state=seed,
        n_jobs=n_jobs,
        verbose=bool(verbose),
        **params,
    )
    index.prepare()
    return index


def exact_cosine(Q, vectors, dist, ind, chunk_size=4096):
    """Exact cosine distances of the pairs an index returned, each row sorted again.

    pynndescent searches cosine as ``-log2(cos)`` and reports every pair with a
    non-positive cosine similarity at distance 1: the returned pairs' distances
    are recomputed from ``vectors`` (the fitted vectors, L2-normalised), and
    ``dist`` is overwritten. Missing neighbours (index -1) go last, at infinity.
    """
    Qn = normalize(np.asarray(Q, dtype=np.float32))
    for start in range(0, ind.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        V = vectors[np.maximum(ind[rows], 0)]
        d = 1.0 - np.einsum("qd,qkd->qk", Qn[rows], V).astype(np.float64)
        d[ind[rows] < 0] = np.inf
        dist[rows] = d
    order = np.argsort(dist, axis=1, kind="stable")
    dist = np.clip(np.take_along_axis(dist, order, axis=1), 0.0, 2.0)
    return dist, np.take_along_axis(ind, order, axis=1)


def vectors_from_index(index):
    """The fitted vectors of an index pickled before ``vectors_`` existed.

    Reads pynndescent's private ``_raw_data`` (reordered by ``prepare()``:
    ``_raw_data[i]`` is fitted row ``_vertex_order[i]``); only used to load
    models saved by sklearn_music 0.1.
    """
    position = np.argsort(index._vertex_order)
    return np.asarray(index._raw_data[position], dtype=np.float32)


# --------------------------------------------------------------------------- #
# the approximate index as plain arrays (pickling, skops) and back
# --------------------------------------------------------------------------- #
def _copy_arrays(value):
    if isinstance(value, np.ndarray):
        return np.array(value)  # owned and writeable, also from a read-only memmap
    if isinstance(value, tuple):
        return tuple(_copy_arrays(v) for v in value)
    if isinstance(value, list):
        return [_copy_arrays(v) for v in value]
    return value


def nndescent_to_plain(index):
    """An NNDescent's state with only arrays and builtins (no numba objects)."""
    state = index.__getstate__()
    for key in _NND_FUNCTIONS:
        state.pop(key, None)
    graph = state.pop("_search_graph", None)
    if graph is not None:
        graph = sparse.csr_array(graph)
        state["_search_graph_parts"] = (
            graph.data,
            graph.indices,
            graph.indptr,
            tuple(int(s) for s in graph.shape),
        )
    state["_input_dtype"] = np.dtype(state["_input_dtype"]).name
    if "_min_distance" in state:
        state["_min_distance"] = float(state["_min_distance"])
    state["_search_forest"] = tuple(tuple(tree) for tree in state["_search_forest"])
    return {"pynndescent_state": state}


def nndescent_from_plain(plain):
    """Rebuild an NNDescent from :func:`nndescent_to_plain`'s output, copying arrays."""
    from pynndescent import NNDescent

    state = {k: _copy_arrays(v) for k, v in plain["pynndescent_state"].items()}
    parts = state.pop("_search_graph_parts", None)
    if parts is not None:
        data, indices, indptr, shape = parts
        state["_search_graph"] = sparse.csr_array((data, indices, indptr), shape=tuple(shape))
    state["_input_dtype"] = np.dtype(state["_input_dtype"]).type
    if "_min_distance" in state:
        state["_min_distance"] = np.float32(state["_min_distance"])
    state["_distance_correction"] = None  # set again by NNDescent._set_distance_func
    index = NNDescent.__new__(NNDescent)
    index.__setstate__(state)
    return index
