"""``sklearn-music similar`` and ``recommend``: stored ids or audio files as queries.

How a query argument is read
----------------------------
1. A stored track id (exactly as ``index`` wrote it: the path relative to the
   indexed folder) is a stored track: its precomputed list (``similar``) or its
   stored vector (``recommend``) is used, even if a file of that name exists in
   the current folder.
2. Otherwise, an existing file is audio: it is embedded with ``--model`` (the
   model that indexed the store) and searched by an exhaustive scan.
3. Otherwise the argument is an error ("not a stored track id, nor a file").

An audio file whose vector is in the store (the file of a stored track, or an
exact duplicate: a score within ``1e-5`` of a perfect match) is that stored track:
it is left out of the answer of ``similar`` and ``recommend``, as a stored id is.

``similar -k K`` above the store's ``n_neighbors`` (the similar tracks stored per
track) scans every stored vector for the exact top K instead of the stored list.
"""

import os

import numpy as np

SAME_TRACK = 1e-5  # a file whose best match scores within this of perfect is that track


class QueryError(Exception):
    """A query the command line cannot answer; the message says why."""


def escape_id(name):
    """A file name's bytes that are not UTF-8 (lone surrogates in Python) as ``\\xNN``.

    Such ids could be neither saved nor printed; the escaped form is kept in the
    model and the store, and TRACK arguments are escaped the same way.
    """
    if name.isascii():
        return name
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def resolve(store, text):
    """``("id", track_id)`` for a stored id, ``("file", path)`` for a file, or raise."""
    key = escape_id(text)
    if store.id_type is int:
        try:
            key = int(key)
        except ValueError:
            key = None
    if key is not None and key in store:
        return "id", key
    if os.path.isfile(text):
        return "file", text
    kind = "integers" if store.id_type is int else "paths relative to the indexed folder"
    raise QueryError(
        f"unknown track {text!r}: not a track id in {str(store.path)!r} (its ids are "
        f"{kind}), nor an audio file"
    )


def embed_files(model, paths, store):
    """The vectors of audio files, embedded with a loaded model; checks the dimension."""
    from ._query import embedding_steps

    vectors = np.asarray(embedding_steps(model).transform([str(p) for p in paths]))
    if vectors.shape[1] != store.dim:
        raise QueryError(
            f"the model embeds into {vectors.shape[1]} dimensions but {str(store.path)!r} "
            f"holds {store.dim}-dimensional vectors: query with the model that indexed it"
        )
    return vectors


def similar(store, kind, query, k, model_loader, warn):
    """The answer of ``similar``: stored list, exhaustive scan, or audio query."""
    if kind == "file":
        vector = embed_files(model_loader(), [query], store)[0]
        found = store.similar_to_vector(vector, k=k + 1)
        itself = _stored_copies(store, found[:1])
        return [(t, s) for t, s in found if t not in itself][:k]
    if k <= store.n_neighbors:
        return store.similar(query, k=k)
    # more than the stored list: exact scan, the track itself left out
    found = store.similar_to_vector(store.vector(query), k=k + 1)
    out = [(t, s) for t, s in found if t != query][:k]
    if len(out) < k:
        warn(f"the store holds {len(store) - 1} other tracks; printing {len(out)}")
    return out


def _stored_copies(store, best):
    """The ids among ``best`` (a file's top matches) that are the file itself."""
    perfect = 1.0 if store.metric == "cosine" else 0.0
    return {t for t, s in best if s >= perfect - SAME_TRACK}


def recommend(store, queries, *, k, exhaustive, aggregate, model_loader, warn):
    """The answer of ``recommend`` for resolved ``(kind, query)`` history items."""
    if all(kind == "id" for kind, _ in queries):
        history = [q for _, q in queries]
        out = store.recommend(history, k=k, exhaustive=exhaustive, aggregate=aggregate)
        if len(out) < k and not exhaustive and len(store) - len(set(history)) > len(out):
            warn(
                f"{len(out)} of the {k} asked: only the tracks reached through the stored "
                "similar tracks of the history are candidates; --exhaustive scores every track"
            )
        return out
    return _recommend_vectors(store, queries, k=k, aggregate=aggregate, model_loader=model_loader)


def _recommend_vectors(store, queries, *, k, aggregate, model_loader):
    """A history with audio files: exhaustive scans from the history's vectors."""
    from .store import _aggregate
    from .store import _search as search

    files = [q for kind, q in queries if kind == "file"]
    embedded = iter(embed_files(model_loader(), files, store))
    ids = [q for kind, q in queries if kind == "id"]
    H = np.vstack(
        [store.vector(q) if kind == "id" else next(embedded) for kind, q in queries]
    ).astype(np.float64)
    exclude = set(ids)  # the history, its files' stored copies included
    for vector in H[[kind == "file" for kind, _ in queries]]:
        exclude |= _stored_copies(store, store.similar_to_vector(vector, k=1))
    H = search.prepare(H, store.metric)
    if aggregate == "mean":  # one row: one cluster, its (unit) mean is the profile
        H = H.mean(axis=0, keepdims=True)
    clusters = _aggregate.cluster_queries(H, store.metric)
    lists = []
    for q, _ in clusters:
        found = store.similar_to_vector(q[0], k=k + len(exclude))
        kept = [(t, s) for t, s in found if t not in exclude][:k]
        lists.append(([s for _, s in kept], [t for t, _ in kept]))
    return _aggregate.round_robin(lists, k)
