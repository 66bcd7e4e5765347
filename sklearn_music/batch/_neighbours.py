"""Every track's top-k similar tracks on a Dask cluster, streamed into a store."""

from numbers import Integral

import numpy as np

from ..utils._sklearn_compat import StrOptions, validate_params
from . import _shards


def top_k_block(index, start, stop, k, metric):
    """Rows ``start:stop`` of the fitted index against all others; run on a worker.

    Returns (int32 row indices, float32 scores) of shape ``(stop - start, k)``,
    best first, the track itself excluded (-1 / -inf pad a short list).
    """
    Q = index.vectors_[start:stop]
    n = index.n_samples_fit_
    kq = min(k + 1, n)
    dist, ind = index.kneighbors(Q, n_neighbors=kq)
    own = ind == np.arange(start, stop)[:, None]
    own[~own.any(axis=1), -1] = True  # the track itself not found: drop the farthest
    ind = ind[~own].reshape(len(Q), kq - 1)
    dist = dist[~own].reshape(len(Q), kq - 1)
    scores = 1.0 - dist if metric == "cosine" else -dist
    order = np.argsort(-scores, axis=1, kind="stable")
    ind = np.take_along_axis(ind, order, axis=1).astype(np.int32)
    scores = np.take_along_axis(scores, order, axis=1).astype(np.float32)
    return ind, scores


@validate_params(
    {
        "vectors": _shards.PATH,
        "store": _shards.PATH,
        "n_neighbors": _shards.POSITIVE,
        "metric": [StrOptions({"cosine", "euclidean"})],
        "algorithm": [StrOptions({"auto", "brute", "nndescent"})],
        "index_params": [dict, None],
        "random_state": ["random_state"],
        **_shards.CLUSTER,
        "block_size": _shards.POSITIVE,
        "n_jobs": [Integral, None],
    },
    prefer_skip_nested_validation=True,
)
def build_store_from_vectors(
    vectors,
    store,
    *,
    n_neighbors=10,
    metric="cosine",
    algorithm="auto",
    index_params=None,
    random_state=0,
    scheduler=None,
    n_workers=2,
    block_size=20000,
    n_jobs=None,
    progress=None,
):
    """Build a similarity store from Parquet vector shards on a Dask cluster.

    The approximate index (:class:`~sklearn_music.NearestTracks`) is fitted
    once in this process on the tracks sorted by id, scattered to every worker
    once, and each worker computes the top-k of blocks of ``block_size``
    tracks. The blocks come back in order, at most a few in flight, and are
    written straight into the store's private file, so no process holds all
    neighbour lists.

    Parameters
    ----------
    vectors : str or path-like
        A folder of ``part-*.parquet`` shards (as written by
        :func:`embed_catalogue`) or one Parquet file with ``track_id`` and
        ``vector`` columns.
    store : str or path-like
        The :class:`~sklearn_music.store.SimilarityStore` file to write.
    n_neighbors : int, default=10
        Similar tracks stored per track.
    metric : {"cosine", "euclidean"}, default="cosine"
        Similarity measure.
    algorithm : {"auto", "brute", "nndescent"}, default="auto"
        Passed to :class:`~sklearn_music.NearestTracks`.
    index_params : dict, default=None
        Passed to :class:`~sklearn_music.NearestTracks`.
    random_state : int, default=0
        Seed of the approximate index.
    scheduler : str or dask.distributed.Client, default=None
        A scheduler address or a client; None starts a local cluster.
    n_workers : int, default=2
        Workers of the local cluster.
    block_size : int, default=20000
        Tracks per task.
    n_jobs : int, default=None
        Threads used to fit the index in this process.
    progress : bool, default=None
        Show a progress bar; None shows it when stderr is a terminal.

    Returns
    -------
    n_tracks : int
        Tracks written to the store.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music.batch import build_store_from_vectors
    >>> from sklearn_music.batch._shards import vectors_table, write_parquet_atomic
    >>> from sklearn_music.store import SimilarityStore
    >>> tmp = getfixture("tmp_path")
    >>> X = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    >>> write_parquet_atomic(vectors_table(["a", "b", "c", "d"], X), tmp / "v.parquet")
    >>> build_store_from_vectors(tmp / "v.parquet", tmp / "s.db", n_neighbors=1, n_workers=1)
    4
    >>> SimilarityStore(tmp / "s.db").similar("a")
    [('b', 0.995...)]
    """
    from ..store import _format as fmt
    from ..store._write import write_store_blocks

    ids, X = _shards.read_vectors(vectors)
    X, keys, id_type = fmt.check_tracks(X, ids, metric=metric)
    order = np.argsort(np.asarray(keys, dtype=object), kind="stable")  # sequential inserts
    keys = [keys[i] for i in order]
    X = X[order]
    del ids, order
    index = _fit_index(X, n_neighbors, metric, algorithm, index_params, random_state, n_jobs)
    n, k = X.shape[0], min(n_neighbors, X.shape[0] - 1)
    with _shards.dask_client(scheduler, n_workers=n_workers) as client:
        shared = client.scatter(index, broadcast=True, hash=False)
        del index
        blocks = _stream_blocks(client, shared, n, k, metric, block_size, progress)
        write_store_blocks(store, X, keys, id_type, blocks, metric=metric, n_neighbors=n_neighbors)
    return n


def _fit_index(X, n_neighbors, metric, algorithm, index_params, random_state, n_jobs):
    from .._neighbors import NearestTracks

    index = NearestTracks(
        n_neighbors=max(1, min(n_neighbors, X.shape[0] - 1)),
        metric=metric,
        algorithm=algorithm,
        index_params=index_params,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    return index.fit(X)


def _stream_blocks(client, shared, n, k, metric, block_size, progress):
    """Yield (start, idx, scores) blocks in row order, a bounded number in flight."""
    from collections import deque

    starts = list(range(0, n, block_size))
    if k == 0:
        for s in starts:
            m = min(n, s + block_size) - s
            yield s, np.empty((m, 0), np.int32), np.empty((m, 0), np.float32)
        return
    n_conn = max(1, len(client.scheduler_info().get("workers", {})))
    window = 2 * n_conn
    queue = deque()
    todo = iter(starts)
    with _shards.progress_bar(len(starts), desc="neighbours", show=progress) as bar:
        while True:
            while len(queue) < window and (s := next(todo, None)) is not None:
                fut = client.submit(
                    top_k_block, shared, s, min(n, s + block_size), k, metric, pure=False
                )
                queue.append((s, fut))
            if not queue:
                return
            s, fut = queue.popleft()
            idx, scores = fut.result()
            fut.release()
            bar.update(1)
            yield s, idx, scores
