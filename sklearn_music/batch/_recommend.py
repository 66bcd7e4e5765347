"""Recommendations for every user of a listening table, on a Dask cluster."""

import array
import os
from numbers import Integral
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..store import _format as fmt
from ..store import _search as search
from ..store._read import StoreError
from ..utils._sklearn_compat import validate_params
from . import _shards


def read_histories(listening, *, min_plays=1):
    """A listening table as (user ids, list of track-id lists), users sorted.

    Each history holds the user's distinct tracks in table order; with a
    ``plays`` column, rows with fewer than ``min_plays`` plays are dropped.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    table = _shards.read_table(listening)
    for name in ("user_id", "track_id"):
        if name not in table.column_names:
            raise ValueError(
                f"{str(listening)!r} has no column {name!r}; its columns are {table.column_names}"
            )
    if "plays" in table.column_names:
        table = table.filter(pc.greater_equal(table.column("plays"), min_plays))
    table = table.select(["user_id", "track_id"]).append_column(
        "row", pa.array(np.arange(table.num_rows))
    )
    table = table.sort_by([("user_id", "ascending"), ("row", "ascending")])
    users = table.column("user_id").to_numpy(zero_copy_only=False)
    tracks = table.column("track_id").to_pylist()
    if len(users) == 0:
        return [], []
    bounds = np.flatnonzero(users[1:] != users[:-1]) + 1
    starts = np.concatenate([[0], bounds])
    stops = np.concatenate([bounds, [len(users)]])
    user_ids = [users[s].item() if hasattr(users[s], "item") else users[s] for s in starts]
    histories = [list(dict.fromkeys(tracks[a:b])) for a, b in zip(starts, stops)]
    return user_ids, histories


_RESIDENT = {}  # in a worker process: the store file's (path, identity) -> _Rows


def _resident(store):
    """The store's ``resident_rows``, read once per worker process and file version."""
    st = os.stat(store.path)
    ident = (str(store.path), st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    if ident not in _RESIDENT:
        _RESIDENT.clear()  # one store at a time
        _RESIDENT[ident] = resident_rows(store)
    return _RESIDENT[ident]


def recommend_part(store_path, index, user_ids, histories, output, n, exhaustive, resident=False):
    """Recommend for a part of the users and write its shard; run on a worker.

    Tracks of a history that the store does not hold are left out; a user
    with none left (or whose profile has no direction) gets no rows. With
    ``resident``, the worker keeps the whole store in memory for its next parts.
    """
    import pyarrow as pa

    from ..store import SimilarityStore

    shard = Path(output) / _shards.shard_name(index)
    if shard.is_file():
        return {"index": index, "skipped": True}
    cols = {"user_id": [], "rank": [], "track_id": [], "score": []}
    with SimilarityStore(store_path) as store:
        rows = _resident(store) if resident and not exhaustive else None
        lists = recommend_users(store, histories, n=n, exhaustive=exhaustive, rows=rows)
        for user, recs in zip(user_ids, lists):
            for rank, (tid, score) in enumerate(recs, start=1):
                cols["user_id"].append(user)
                cols["rank"].append(rank)
                cols["track_id"].append(tid)
                cols["score"].append(score)
        id_type = pa.int64() if store.id_type is int else pa.string()
    table = pa.table(
        {
            "user_id": pa.array(cols["user_id"], type=_user_type(user_ids)),
            "rank": pa.array(cols["rank"], type=pa.int32()),
            "track_id": pa.array(cols["track_id"], type=id_type),
            "score": pa.array(cols["score"], type=pa.float32()),
        }
    )
    _shards.write_parquet_atomic(table, shard)
    return {"index": index, "skipped": False, "n_rows": table.num_rows}


# --------------------------------------------------------------------------- #
# scoring many users at once
# --------------------------------------------------------------------------- #
def recommend_users(store, histories, *, n, exhaustive=False, batch_size=65536, rows=None):
    """``store.recommend(known, k=n, exhaustive=exhaustive)`` for many histories at once.

    ``known`` is the part of a history that the store holds (``t in store``).
    The histories' rows are read in bulk (a few ``IN (...)`` queries), a small
    store or ``exhaustive=True`` is scanned once for all the users, and
    otherwise each user gets :meth:`SimilarityStore.recommend
    <sklearn_music.store.SimilarityStore.recommend>`'s own best-first search of
    the stored lists (over the store held in memory when ``rows`` is given), so
    the lists are the same.

    Parameters
    ----------
    store : SimilarityStore
        An open store.
    histories : list of list of (str or int)
        Track ids per user, distinct within a history.
    n : int
        Tracks per list.
    exhaustive : bool, default=False
        As for ``recommend``: score every stored vector (one scan for all
        the users, a matrix product per chunk of ``batch_size`` tracks)
        instead of ``recommend``'s best-first search of the stored lists
        (which scans stores of at most 1024 tracks as well).
    batch_size : int, default=65536
        Tracks per chunk of the exhaustive scan.
    rows : _Rows, default=None
        The store already in memory (:func:`resident_rows`): the search
        reads its lists and vectors there. None reads the histories' rows in
        bulk and the search's lists from the store, as ``recommend`` does.

    Returns
    -------
    lists : list of list of (track_id, float)
        Per history, ``(track_id, score)`` best first; empty for a history
        with no stored track, or whose mean unit vector is zero (where
        ``recommend`` raises).
    """
    from ..store import _queries

    kind = store.id_type.__name__
    keys = [[fmt.id_to_key(t, kind) for t in h if fmt.id_kind(t) == kind] for h in histories]
    resident = rows is not None
    if rows is None:
        rows = _rows_of(store, list(dict.fromkeys(k for h in keys for k in h)))
    hist = [np.array([rows.row[k] for k in h if k in rows.row], dtype=np.intp) for h in keys]
    hist = [r[rows.listed[r]] for r in hist]  # ``t in store``: the track has a list
    queries = [
        _profile(search.prepare(rows.X[r], store.metric), store.metric) if r.size else None
        for r in hist
    ]
    if exhaustive or len(store) <= _queries.SCAN_BELOW:  # recommend scans small stores
        best = _best_of_scan(store, queries, [rows.keys[r] for r in hist], n, batch_size)
    else:
        readers = _readers(rows) if resident else {}
        best = [
            _queries.graph_search(
                store, q, list(dict.fromkeys(rows.keys[r])), set(rows.keys[r]), n, **readers
            )
            if q is not None
            else ((), ())
            for q, r in zip(queries, hist)
        ]
    return [[(store._to_id(k), float(x)) for x, k in zip(*b)] for b in best]


class _Rows(NamedTuple):
    """Store rows in memory: TEXT keys, their row numbers, float32 vectors, whether a
    row's neighbour list was read, and the lists as row numbers (``nbrs[start[i] :
    start[i] + length[i]]``)."""

    keys: np.ndarray
    row: dict
    X: np.ndarray
    listed: np.ndarray
    start: np.ndarray
    length: np.ndarray
    nbrs: np.ndarray


def _rows_from(store, keys, lists):
    """_Rows of ``keys``'s vectors (read if ``keys`` is None: the whole store) and
    of the ``(key, neighbour keys)`` pairs of ``lists``."""
    from ..store import _bulk

    if keys is None:
        keys, blocks = [], []
        for part, X, _ in _bulk.scan(store, 65536):
            keys += part
            blocks.append(X)
        X = np.concatenate(blocks) if blocks else np.empty((0, store.dim), np.float32)
    else:
        X = _bulk.vectors_of(store, keys)
    row = {k: i for i, k in enumerate(keys)}
    listed = np.zeros(len(keys), dtype=bool)
    start, length = np.zeros(len(keys), np.int64), np.zeros(len(keys), np.int64)
    flat = array.array("q")
    for key, others in lists:
        i = row.get(key)
        if i is None:
            raise StoreError(store.path, f"track {key!r} has a neighbour list but no vector")
        listed[i], start[i], length[i] = True, len(flat), len(others)
        try:
            flat.extend(map(row.__getitem__, others))
        except KeyError as exc:
            raise StoreError(
                store.path, f"track {key!r} lists {exc.args[0]!r}, not stored"
            ) from None
    keys = np.array(keys, dtype=object)
    return _Rows(keys, row, X, listed, start, length, np.frombuffer(flat, dtype=np.int64))


def _rows_of(store, keys):
    """_Rows for histories of TEXT ``keys``: their lists (the keys without one are not
    stored) and their vectors; the search reads the rest (``recommend``'s scan or graph
    search)."""
    from ..store import _bulk

    lists = _bulk.lists_of(store, keys)
    return _rows_from(store, list(lists), ((key, ()) for key in lists))


def resident_rows(store):
    """The whole store in memory as ``_Rows`` (every vector and list, checked).

    ``4 x dim + 8 x n_neighbors`` bytes per track plus a dict of the ids; one
    read of each table, worth it where a job touches most of the store.
    """
    from ..store import _bulk

    rows = _rows_from(store, None, _bulk.iter_lists(store))
    if not rows.listed.all():
        key = rows.keys[int(np.flatnonzero(~rows.listed)[0])]
        raise StoreError(store.path, f"track {key!r} has a vector but no neighbour list")
    return rows


def _profile(H, metric):
    """The query of prepared history rows H, as ``SimilarityStore.recommend`` makes it;
    None where the unit vectors sum to zero (``recommend`` raises)."""
    q = H.mean(axis=0, keepdims=True)
    if metric == "cosine":
        norm = np.linalg.norm(q)
        if norm == 0:
            return None
        q /= norm
    return q


def _readers(rows):
    """``lists`` and ``vectors`` readers of ``SimilarityStore``'s graph search over a
    store held in memory (``resident_rows``): the same keys, lists and vectors as its
    SQL reads, so the same search."""
    keys, row, start, length, nbrs = rows.keys, rows.row, rows.start, rows.length, rows.nbrs

    def lists(part):
        return [keys[nbrs[start[i] : start[i] + length[i]]] for i in map(row.__getitem__, part)]

    def vectors(part):
        return rows.X[[row[k] for k in part]]

    return {"lists": lists, "vectors": vectors}


def _best_of_scan(store, queries, histories, n, batch_size, users_per_block=256):
    """The n best of every stored track per query, as ``search.best_of``, over one
    scan: a matrix product per chunk and block of users."""
    from ..store import _bulk

    users = [u for u, q in enumerate(queries) if q is not None]
    best = [([], []) for _ in queries]
    for keys, X, _ in _bulk.scan(store, batch_size):
        Xp = search.prepare(X, store.metric)
        col = {k: i for i, k in enumerate(keys)}
        keys = np.asarray(keys, dtype=object)
        for lo in range(0, len(users), users_per_block):
            block = users[lo : lo + users_per_block]
            S = search.scores(np.vstack([queries[u] for u in block]), Xp, store.metric)
            for u, s in zip(block, S):
                keep = np.ones(len(keys), dtype=bool)
                keep[[col[k] for k in histories[u] if k in col]] = False
                ts, tk = search.top_k(s[keep][None, :], keys[keep], n)
                best[u] = search.merge(*best[u], ts[0], tk[0], n)
    return best


def _user_type(user_ids):
    import pyarrow as pa

    return pa.int64() if user_ids and isinstance(user_ids[0], (int, np.integer)) else pa.string()


@validate_params(
    {
        "listening": _shards.PATH,
        "store": _shards.PATH,
        "output": _shards.PATH,
        "n": _shards.POSITIVE,
        "exhaustive": ["boolean"],
        "min_plays": [Integral],
        "into_store": ["boolean"],
        **_shards.CLUSTER,
        "users_per_task": _shards.POSITIVE,
    },
    prefer_skip_nested_validation=True,
)
def recommend_all(
    listening,
    store,
    output,
    *,
    n=10,
    exhaustive=False,
    min_plays=1,
    into_store=False,
    scheduler=None,
    n_workers=2,
    users_per_task=5000,
    progress=None,
):
    """Recommend tracks for every user of a listening table on a Dask cluster.

    Each user's list is :meth:`SimilarityStore.recommend
    <sklearn_music.store.SimilarityStore.recommend>` of the tracks of their
    history that the store holds (a user with none, or whose mean unit vector
    is zero, gets no rows). The users are split into parts of
    ``users_per_task``; each part runs on a worker, which opens the store file
    read-only (so the store must be on a file system the workers share), reads
    the neighbour lists and vectors that all the part's users need with a few
    queries, scores every user with the functions ``recommend`` uses, and
    writes a Parquet shard ``output/part-NNNNNN.parquet`` of ``user_id, rank,
    track_id, score``. A rerun skips the parts already written.

    Parameters
    ----------
    listening : str or path-like
        A Parquet or CSV table with columns ``user_id``, ``track_id`` and
        optionally ``plays``.
    store : str or path-like
        A :class:`~sklearn_music.store.SimilarityStore` file.
    output : str or path-like
        Folder of the recommendation shards.
    n : int, default=10
        Tracks recommended per user.
    exhaustive : bool, default=False
        Passed to ``SimilarityStore.recommend``.
    min_plays : int, default=1
        With a ``plays`` column, rows with fewer plays are left out.
    into_store : bool, default=False
        Also write every user's list into the store, readable by
        :meth:`SimilarityStore.recommended
        <sklearn_music.store.SimilarityStore.recommended>` in one lookup.
    scheduler : str or dask.distributed.Client, default=None
        A scheduler address or a client; None starts a local cluster.
    n_workers : int, default=2
        Workers of the local cluster.
    users_per_task : int, default=5000
        Users per part (per shard). A worker holds the part's neighbour
        lists and candidate vectors: up to ``users_per_task x history length
        x n_neighbors`` distinct tracks, ``8 x dim`` bytes each.
    progress : bool, default=None
        Show a progress bar; None shows it when stderr is a terminal.

    Returns
    -------
    summary : dict
        ``n_users``, ``n_parts``, ``n_written`` and ``n_skipped`` parts.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_music.batch import recommend_all
    >>> from sklearn_music.store import SimilarityStore
    >>> tmp = getfixture("tmp_path")
    >>> vectors = [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]
    >>> SimilarityStore.build(tmp / "s.db", vectors, ["a", "b", "c", "d"], n_neighbors=2)
    >>> pd.DataFrame({"user_id": [1, 1, 2], "track_id": ["a", "b", "c"]}).to_csv(
    ...     tmp / "plays.csv", index=False)
    >>> out = recommend_all(tmp / "plays.csv", tmp / "s.db", tmp / "recs", n=1, n_workers=1)
    >>> pd.read_parquet(tmp / "recs")[["user_id", "rank", "track_id"]].values.tolist()
    [[1, 1, 'd'], [2, 1, 'd']]
    """
    from ._embed import run_partitions

    user_ids, histories = read_histories(listening, min_plays=min_plays)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    _shards.clean_stale(output)
    n_users = len(user_ids)
    n_parts = -(-n_users // users_per_task)
    _shards.write_manifest(
        output, {"n_users": n_users, "users_per_task": users_per_task, "n": n, "store": str(store)}
    )
    todo = [i for i in range(n_parts) if not (output / _shards.shard_name(i)).is_file()]
    summary = {"n_users": n_users, "n_parts": n_parts, "n_written": 0}
    summary["n_skipped"] = n_parts - len(todo)
    store_path = str(Path(store).resolve())
    resident = _touches_most(store_path, histories)
    with _shards.dask_client(scheduler, n_workers=n_workers) as client:
        n_conn = max(1, len(client.scheduler_info().get("workers", {})))

        def args_of(i):
            lo, hi = i * users_per_task, min(n_users, (i + 1) * users_per_task)
            part = (user_ids[lo:hi], histories[lo:hi])
            return store_path, i, *part, str(output), n, exhaustive, resident

        with _shards.progress_bar(len(todo), desc="recommending", show=progress) as bar:
            for r in run_partitions(
                client, recommend_part, args_of, todo, window=2 * n_conn + 2, progress=bar
            ):
                summary["n_written"] += not r["skipped"]
    if into_store:
        _lists_into_store(output, n_parts, store)
    return summary


def _touches_most(store_path, histories):
    """Whether the users' lookups (a list and its vectors per history track and
    per track the graph search expands, at least ``BEAM`` of them) outnumber the
    store's tracks: then each worker reads the whole store once and keeps it in
    memory for all its parts."""
    from ..store import SimilarityStore
    from ..store._queries import BEAM

    with SimilarityStore(store_path) as store:
        n_tracks, k = len(store), store.n_neighbors
    return sum(len(h) + BEAM for h in histories) * (1 + k) > n_tracks


def _lists_into_store(output, n_parts, store):
    """Stream the shards' lists into the store's ``users`` table."""
    import pyarrow.parquet as pq

    from ..store import _format as fmt
    from ..store._write import write_user_lists

    def rows():
        for i in range(n_parts):
            t = pq.read_table(Path(output) / _shards.shard_name(i))
            users = t.column("user_id").to_pylist()
            tracks = t.column("track_id").to_pylist()
            scores = t.column("score").to_numpy()
            lo = 0
            while lo < len(users):
                hi = lo
                while hi < len(users) and users[hi] == users[lo]:
                    hi += 1
                kind = fmt.id_kind(users[lo])
                yield (
                    fmt.id_to_key(users[lo], kind),
                    scores[lo:hi].tolist(),
                    [fmt.id_to_key(x, fmt.id_kind(x)) for x in tracks[lo:hi]],
                )
                lo = hi

    first = _first_user(output, n_parts)
    write_user_lists(store, rows(), user_id_type=fmt.id_kind(first) if first is not None else "str")


def _first_user(output, n_parts):
    import pyarrow.parquet as pq

    for i in range(n_parts):
        col = pq.read_table(Path(output) / _shards.shard_name(i), columns=["user_id"]).column(0)
        if len(col):
            return col[0].as_py()
    return None
