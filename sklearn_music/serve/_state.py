"""The serving state: the hot-swapped store, the metrics, the error type.

Nothing here imports the web framework.
"""

import bisect
import logging
import os
import threading
import time

import numpy as np

from ..store import SimilarityStore

logger = logging.getLogger("sklearn_music.serve")

# latency histogram buckets in seconds (Prometheus ``le`` bounds)
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class APIError(Exception):
    """An error answered as ``{"error": {"status", "code", "message"}}``."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


# --------------------------------------------------------------------------- #
# the store, switched to a new file when one is published
# --------------------------------------------------------------------------- #
def _file_tag(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_mtime_ns


class StoreHolder:
    """The current version of a store file, re-opened when the file is replaced.

    :meth:`get` looks at the file's ``(st_dev, st_ino, st_mtime_ns)`` at most
    every ``check_interval`` seconds; when it changed (a build or an ``add``
    published a new file with ``os.replace``), it opens the new file, makes it
    current and closes the old one. The store's connection belongs to the
    thread that made the holder (``sqlite3`` objects are per thread): use one
    holder per thread.

    A request takes the version once, with :meth:`get`, and uses that object
    to the end; the holder of the event loop is only used by code that does
    not ``await`` while it holds the version, so no request is in flight on
    the old version when it is closed, and none reads from two versions.
    """

    def __init__(self, path, *, check_interval=0.5):
        self.path = os.fspath(path)
        self.check_interval = check_interval
        self.swaps = 0
        self.swap_failures = 0
        self.store, self.tag = self._open()
        self._next_check = time.monotonic() + check_interval

    def _open(self):
        """Open the file now at path; the tag is taken before and after opening."""
        for _ in range(5):
            try:
                before = _file_tag(self.path)
            except FileNotFoundError:
                before = None  # SimilarityStore says what is missing
            store = SimilarityStore(self.path)
            after = _file_tag(self.path)
            if before == after:
                return store, after
            store.close()  # replaced while opening: open the newer file
        return SimilarityStore(self.path), _file_tag(self.path)

    @property
    def version(self):
        """The current version's name: ``<inode>-<mtime in ns>`` of its file."""
        return f"{self.tag[1]}-{self.tag[2]}"

    def get(self):
        """Return the current store, switching to a newly published file first."""
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self.check_interval
            self.check()
        return self.store

    def check(self):
        """Switch to the file at path if it is not the open one; return whether it did."""
        try:
            tag = _file_tag(self.path)
        except FileNotFoundError:
            return False  # mid-replace or removed: keep serving the open version
        if tag == self.tag:
            return False
        try:
            store, tag = self._open()
        except (OSError, ValueError) as exc:  # not (yet) a valid store: keep the old one
            self.swap_failures += 1
            logger.warning("could not open the new store file %r: %s", self.path, exc)
            return False
        old, self.store, self.tag = self.store, store, tag
        old.close()
        self.swaps += 1
        logger.info("switched to the store file %r version %s", self.path, self.version)
        return True

    def close(self):
        self.store.close()


class ThreadStores:
    """One :class:`StoreHolder` per thread (for the embedding endpoint's pool)."""

    def __init__(self, path):
        self.path = path
        self._local = threading.local()

    def get(self):
        holder = getattr(self._local, "holder", None)
        if holder is None:
            holder = self._local.holder = StoreHolder(self.path, check_interval=0.0)
        holder.get()
        return holder


# --------------------------------------------------------------------------- #
# exhaustive search by vector
# --------------------------------------------------------------------------- #
def similar_to_vector(store, vector, *, k=10, batch_size=65536):
    """Return the stored tracks most similar to a vector, by an exhaustive scan.

    Every stored vector is scored against ``vector`` with the store's metric
    (the store's score: cosine similarity, or minus the Euclidean distance),
    reading the store in chunks of ``batch_size`` rows: exact, at a cost of
    ``O(len(store) * dim)``.

    Parameters
    ----------
    store : SimilarityStore
        An open store.
    vector : array-like of shape (dim,)
        The query, e.g. a new track's embedding.
    k : int, default=10
        Number of tracks to return.
    batch_size : int, default=65536
        Rows per chunk of the scan.

    Returns
    -------
    similar : list of (track_id, float)
        ``(track_id, score)`` pairs, best first.

    Examples
    --------
    >>> from sklearn_music.serve import similar_to_vector
    >>> from sklearn_music.store import SimilarityStore
    >>> path = getfixture("tmp_path") / "tracks.db"
    >>> SimilarityStore.build(path, [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], ["a", "b", "c"])
    >>> similar_to_vector(SimilarityStore(path), [1.0, 0.1], k=2)
    [('a', 0.995...), ('c', 0.773...)]
    """
    q = np.asarray(vector, dtype=np.float64).ravel()
    if q.shape[0] != store.dim:
        raise ValueError(f"the vector has {q.shape[0]} dimensions but the store's have {store.dim}")
    if not np.isfinite(q).all():
        raise ValueError("the vector contains a non-finite value (NaN or inf)")
    cosine = store.metric == "cosine"
    if cosine:
        norm = np.linalg.norm(q)
        if norm == 0:
            raise ValueError("the vector is all zeros; its cosine similarity is undefined")
        q = q / norm
    k = int(k)
    best_s, best_k = np.empty(0), np.empty(0, dtype=object)
    # the store's documented layout: tracks(pos, track_id, vector float32 LE)
    cur = store._conn.execute("SELECT track_id, vector FROM tracks ORDER BY pos")
    while k > 0:
        rows = cur.fetchmany(batch_size)
        if not rows:
            break
        X = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1)
        X = X.astype(np.float64)
        if cosine:
            s = (X @ q) / np.linalg.norm(X, axis=1)
        else:
            s = -np.sqrt(np.maximum(((X - q) ** 2).sum(axis=1), 0.0))
        keys = np.array([r[0] for r in rows], dtype=object)
        s = np.concatenate([best_s, s])
        keys = np.concatenate([best_k, keys])
        if len(s) > k:
            part = np.argpartition(-s, k - 1)[:k]
            s, keys = s[part], keys[part]
        best_s, best_k = s, keys
    order = np.argsort(-best_s, kind="stable")
    to_id = int if store.id_type is int else str
    return [(to_id(best_k[i]), float(best_s[i])) for i in order]


# --------------------------------------------------------------------------- #
# metrics (Prometheus text format)
# --------------------------------------------------------------------------- #
def _labels(**labels):
    def esc(v):
        return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}"


class Metrics:
    """Request counts by route and status, and a latency histogram by route."""

    def __init__(self):
        self.counts = {}  # (route, method, status) -> n
        self.hist = {}  # route -> [bucket counts..., +Inf count, sum]

    def observe(self, route, method, status, seconds):
        key = (route, method, status)
        self.counts[key] = self.counts.get(key, 0) + 1
        h = self.hist.get(route)
        if h is None:
            h = self.hist[route] = [0] * (len(BUCKETS) + 1) + [0.0]
        h[bisect.bisect_left(BUCKETS, seconds)] += 1
        h[-1] += seconds

    def render(self, gauges):
        """The metrics as Prometheus text exposition format (version 0.0.4)."""
        out = [
            "# HELP sklearn_music_requests_total HTTP requests answered.",
            "# TYPE sklearn_music_requests_total counter",
        ]
        for (route, method, status), n in sorted(self.counts.items()):
            out.append(
                "sklearn_music_requests_total"
                f"{_labels(route=route, method=method, status=status)} {n}"
            )
        name = "sklearn_music_request_duration_seconds"
        out += [f"# HELP {name} Time from request to response.", f"# TYPE {name} histogram"]
        for route, h in sorted(self.hist.items()):
            total = 0
            for bound, n in zip((*BUCKETS, "+Inf"), h[:-1]):
                total += n
                out.append(f"{name}_bucket{_labels(route=route, le=bound)} {total}")
            out.append(f"{name}_sum{_labels(route=route)} {h[-1]:.6f}")
            out.append(f"{name}_count{_labels(route=route)} {total}")
        for gname, (kind, text, value) in gauges.items():
            out += [f"# HELP {gname} {text}", f"# TYPE {gname} {kind}", f"{gname} {value}"]
        return "\n".join(out) + "\n"
