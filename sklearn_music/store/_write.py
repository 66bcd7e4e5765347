"""Writing a store: a full build, and adding tracks to an existing one."""

import math

from . import _format as fmt
from . import _read as rd
from . import _search as search
from ._files import private_write


def _row_batches(n, batch_size):
    """Yield (start, stop) slices of the rows to write; one transaction in all."""
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


def write_store(
    path,
    vectors,
    keys,
    id_type,
    nbr_idx,
    nbr_scores,
    *,
    metric,
    n_neighbors,
    batch_size,
    verbose=False,
):
    """Write a complete store to a private file and publish it at path.

    ``nbr_idx`` / ``nbr_scores`` hold, for each row, its neighbours' row indices
    and scores, best first (``nbr_idx`` may be a list of arrays of varying
    length, or a 2-D array).
    """
    n, dim = vectors.shape
    batches = _row_batches(n, batch_size)
    if verbose:
        from tqdm.auto import tqdm

        batches = tqdm(batches, total=math.ceil(n / batch_size), desc="writing store", unit="batch")
    with private_write(path) as conn:
        fmt.create_schema(conn)
        for start, stop in batches:
            fmt.insert_tracks(
                conn,
                start,
                keys[start:stop],
                vectors[start:stop],
                nbr_scores[start:stop],
                [[keys[j] for j in nbr_idx[i]] for i in range(start, stop)],
                n_neighbors=n_neighbors,
                version=fmt.FORMAT_VERSION,
            )
        fmt.write_meta(
            conn, dim=dim, metric=metric, n_neighbors=n_neighbors, id_type=id_type, n_tracks=n
        )


def build_store(
    path,
    vectors,
    track_ids,
    *,
    n_neighbors,
    metric,
    algorithm,
    random_state,
    n_jobs,
    batch_size,
    verbose,
):
    """Check the tracks, compute their neighbours and write the store (``build``)."""
    X, keys, id_type = fmt.check_tracks(vectors, track_ids, metric=metric)
    if not keys:
        raise ValueError("cannot build a store from 0 tracks")
    nbr_idx, nbr_scores = search.compute_neighbors(
        X,
        n_neighbors,
        metric=metric,
        algorithm=algorithm,
        random_state=random_state,
        n_jobs=n_jobs,
        verbose=verbose,
    )
    write_store(
        path,
        X,
        keys,
        id_type,
        nbr_idx,
        nbr_scores,
        metric=metric,
        n_neighbors=n_neighbors,
        batch_size=batch_size,
        verbose=verbose,
    )


def pipeline_vectors(pipeline, X, track_ids, kwargs):
    """The vectors, ids and build arguments of ``from_pipeline``."""
    from sklearn.pipeline import Pipeline

    kwargs = dict(kwargs)
    if isinstance(pipeline, Pipeline):
        if X is None:
            raise ValueError("X is None: give the tracks to embed with the pipeline")
        vectors = pipeline[:-1].transform(X) if len(pipeline) > 1 else X
        return vectors, track_ids, kwargs
    if X is not None:
        raise ValueError(
            f"pipeline is a {type(pipeline).__name__}, not a Pipeline: give "
            "X=None to store its training vectors, or wrap the embedding "
            "steps in a Pipeline"
        )
    vectors = search.fitted_vectors(pipeline)
    kwargs.setdefault("metric", getattr(pipeline, "metric", "cosine"))
    if track_ids is None:
        track_ids = getattr(pipeline, "track_ids_", None)
        if track_ids is None:
            raise ValueError("track_ids is None and the index has no track_ids_")
    return vectors, track_ids, kwargs


def check_not_stored(conn, path, new_keys, track_ids):
    """Raise ValueError naming the first new id that the store already holds."""
    for start in range(0, len(new_keys), 500):
        chunk = new_keys[start : start + 500]
        rows = conn.execute(
            f"SELECT track_id FROM tracks WHERE track_id IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        if rows:
            i = new_keys.index(rows[0][0])
            raise ValueError(
                f"track id {list(track_ids)[i]!r} (row {i}) is already in {str(path)!r}"
            )


def add_tracks(path, chunks, X_new, new_keys, meta, info):
    """Add tracks to the store at ``path`` (copy-on-write; the caller holds the lock).

    ``chunks`` scans the stored tracks (see :func:`search.neighbors_of_new`);
    ``meta`` holds the meta values of the updated store; ``info`` describes the
    current file (the update keeps its format version).
    """
    k = meta["n_neighbors"]
    new_s, new_k, candidates = search.neighbors_of_new(
        chunks, X_new, new_keys, metric=meta["metric"], k=k
    )
    with private_write(path, copy_current=True, lock=False) as conn:
        changed = {}
        for key, old_s, old_k in rd.read_lists(conn, info, list(candidates)):
            cs, ck = candidates[key]
            changed[key] = search.merge(old_s, old_k, cs, ck, k)
        fmt.update_lists(conn, changed, n_neighbors=k, version=info.version)
        (start,) = conn.execute("SELECT COALESCE(MAX(pos) + 1, 0) FROM tracks").fetchone()
        fmt.insert_tracks(
            conn, start, new_keys, X_new, new_s, new_k, n_neighbors=k, version=info.version
        )
        fmt.write_meta(conn, version=info.version, **meta)
