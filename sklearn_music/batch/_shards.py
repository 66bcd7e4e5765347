"""Listings of audio files, Parquet shards of vectors, and the Dask client.

No estimator code here: reading a listing, writing and reading the
``(track_id, vector)`` shards atomically, and opening a ``dask.distributed``
client (a local cluster by default).
"""

import contextlib
import json
import os
from numbers import Integral
from pathlib import Path

import numpy as np

from ..utils._atomic import atomic_write, temp_owner
from ..utils._sklearn_compat import HasMethods, Interval, validate_params

PATH = [str, os.PathLike]
POSITIVE = [Interval(Integral, 1, None, closed="left")]
CLUSTER = {
    "scheduler": [str, HasMethods(["scatter", "submit"]), None],  # an address or a Client
    "n_workers": POSITIVE,
    "progress": ["boolean", None],
}

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".m4a", ".opus")
SHARD_GLOB = "part-*.parquet"


# --------------------------------------------------------------------------- #
# listings and tables
# --------------------------------------------------------------------------- #
def read_table(path, columns=None):
    """A Parquet (``.parquet``/``.pq``) or CSV table as a :class:`pyarrow.Table`."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return pq.read_table(path, columns=columns)
    import pyarrow.csv as pcsv

    options = pcsv.ConvertOptions(include_columns=columns) if columns else None
    return pcsv.read_csv(path, convert_options=options)


@validate_params(
    {"source": PATH, "column": [str], "id_column": [str, None]},
    prefer_skip_nested_validation=True,
)
def read_listing(source, *, column="path", id_column=None):
    """Return the audio files of a folder, a text file or a table of paths.

    Parameters
    ----------
    source : str or path-like
        A folder, searched recursively for audio files (ids: the paths
        relative to it); a text file of one path per line (blank lines and
        ``#`` comments skipped; ids: the paths as written); or a Parquet
        (``.parquet``) or CSV (``.csv``) table. Relative paths in a file are
        taken relative to the file's folder.
    column : str, default="path"
        Column of paths in a table.
    id_column : str, default=None
        Column of track ids in a table; None: the paths as written.

    Returns
    -------
    paths : list of str
        The files, in listing order (sorted for a folder).
    track_ids : list
        One unique id per file.

    Examples
    --------
    >>> from sklearn_music.batch import read_listing
    >>> listing = getfixture("tmp_path") / "files.txt"
    >>> _ = listing.write_text("# my catalogue\\na.wav\\nsub/b.ogg\\n")
    >>> paths, ids = read_listing(listing)
    >>> ids
    ['a.wav', 'sub/b.ogg']
    """
    source = Path(source)
    if source.is_dir():
        paths = sorted(
            p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
        )
        if not paths:
            raise ValueError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {str(source)!r}")
        return [str(p) for p in paths], [p.relative_to(source).as_posix() for p in paths]
    if not source.is_file():
        raise FileNotFoundError(f"no listing at {str(source)!r}: not a folder or a file")
    if source.suffix.lower() in (".parquet", ".pq", ".csv"):
        columns = [column] if id_column is None else [column, id_column]
        table = read_table(source)
        for name in columns:
            if name not in table.column_names:
                raise ValueError(
                    f"{str(source)!r} has no column {name!r}; its columns are {table.column_names}"
                )
        raw = table.column(column).to_pylist()
        ids = table.column(id_column).to_pylist() if id_column else None
    else:
        with open(source, encoding="utf-8") as f:
            raw = [s.strip() for s in f if s.strip() and not s.lstrip().startswith("#")]
        ids = None
    for i, p in enumerate(raw):
        if not isinstance(p, str) or not p:
            raise ValueError(f"row {i} of {str(source)!r} has no path: {p!r}")
    paths = [p if os.path.isabs(p) else str(source.parent / p) for p in raw]
    ids = list(raw) if ids is None else ids
    if len(set(ids)) != len(ids):
        seen = set()
        dup = next(t for t in ids if t in seen or seen.add(t))
        raise ValueError(f"duplicate track id {dup!r} in {str(source)!r}")
    return paths, ids


# --------------------------------------------------------------------------- #
# shards
# --------------------------------------------------------------------------- #
def shard_name(index):
    """The file name of partition ``index``'s shard."""
    return f"part-{index:06d}.parquet"


def errors_name(index):
    """The file name of partition ``index``'s errors."""
    return f"errors-{index:06d}.parquet"


def vectors_table(track_ids, vectors):
    """A :class:`pyarrow.Table` of ``track_id`` and a fixed-size float32 ``vector``."""
    import pyarrow as pa

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    return pa.table(
        {
            "track_id": pa.array(list(track_ids)),
            "vector": pa.FixedSizeListArray.from_arrays(flat, dim),
        }
    )


def write_parquet_atomic(table, path):
    """Write a table to ``path`` so that the file appears complete or not at all."""
    import pyarrow.parquet as pq

    with atomic_write(path, suffix=".tmp") as tmp:
        pq.write_table(table, tmp)


def clean_stale(folder):
    """Remove temporary shard files of processes that are gone."""
    for entry in Path(folder).glob(".*.tmp"):
        name = entry.name[1:].split(".parquet.", 1)[0] + ".parquet"
        pid = temp_owner(entry.with_name(name), entry.name)
        if pid is None:
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        except OSError:
            pass


@validate_params({"folder": PATH}, prefer_skip_nested_validation=True)
def read_vectors(folder):
    """Read the vector shards of a folder (as :func:`embed_catalogue` writes them).

    Parameters
    ----------
    folder : str or path-like
        A folder of ``part-*.parquet`` shards, or one Parquet file, with
        columns ``track_id`` and ``vector`` (a fixed-size list of float32).

    Returns
    -------
    track_ids : list
        The ids, in shard order.
    vectors : ndarray of shape (n_tracks, dim), dtype float32
        The vectors, row ``i`` for ``track_ids[i]``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music.batch import read_vectors
    >>> from sklearn_music.batch._shards import vectors_table, write_parquet_atomic
    >>> path = getfixture("tmp_path") / "v.parquet"
    >>> write_parquet_atomic(vectors_table(["a", "b"], np.eye(2)), path)
    >>> read_vectors(path)
    (['a', 'b'], array([[1., 0.],
           [0., 1.]], dtype=float32))
    """
    import pyarrow.parquet as pq

    folder = Path(folder)
    files = [folder] if folder.is_file() else sorted(folder.glob(SHARD_GLOB))
    if not files:
        raise FileNotFoundError(f"no vector shards ({SHARD_GLOB}) in {str(folder)!r}")
    ids, blocks = [], []
    for f in files:
        t = pq.read_table(f, columns=["track_id", "vector"])
        col = t.column("vector").combine_chunks()
        dim = col.type.list_size
        blocks.append(col.values.to_numpy(zero_copy_only=False).reshape(-1, dim))
        ids.extend(t.column("track_id").to_pylist())
    X = np.concatenate(blocks).astype(np.float32, copy=False)
    return ids, X


def write_manifest(folder, info):
    """Write (or check against) the folder's ``_manifest.json``; raise on a mismatch."""
    path = Path(folder) / "_manifest.json"
    if path.is_file():
        old = json.loads(path.read_text())
        for key, value in info.items():
            if old.get(key) != value:
                raise ValueError(
                    f"{str(folder)!r} holds shards of another run ({key}={old.get(key)!r}, "
                    f"now {value!r}); give an empty output folder or the same listing "
                    "and partition size"
                )
        return
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(info, indent=1))


# --------------------------------------------------------------------------- #
# the Dask client
# --------------------------------------------------------------------------- #
@contextlib.contextmanager
def dask_client(scheduler=None, *, n_workers=2, threads_per_worker=1):
    """Yield a client of ``scheduler`` (an address or a Client), or of a new local cluster.

    The local cluster runs ``n_workers`` processes of ``threads_per_worker``
    threads on loopback, without a dashboard.
    """
    from dask.distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def progress_bar(total, *, desc, show):
    """A tqdm bar on stderr; shown if ``show`` is True, or None and stderr is a terminal."""
    import sys

    from tqdm.auto import tqdm

    if show is None:
        show = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="part", disable=not show)
