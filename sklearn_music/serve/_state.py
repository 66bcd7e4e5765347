"""The serving state: the hot-swapped store, the metrics, the error type.

Nothing here imports the web framework.
"""

import bisect
import logging
import os
import threading
import time

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
    """One :class:`StoreHolder` per thread, opened on the thread's first request.

    The event loop's thread (whichever thread the ASGI server runs it in) and
    each pool thread get their own connection to the current file.
    """

    def __init__(self, path, *, check_interval):
        self.path = path
        self.check_interval = check_interval
        self._local = threading.local()

    def get(self):
        """This thread's holder, switched to a newly published file if there is one."""
        holder = getattr(self._local, "holder", None)
        if holder is None:
            holder = self._local.holder = StoreHolder(self.path, check_interval=self.check_interval)
        else:
            holder.get()
        return holder

    def close(self):
        """Close this thread's store, if it opened one."""
        holder = getattr(self._local, "holder", None)
        if holder is not None:
            holder.close()
            self._local.holder = None


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
