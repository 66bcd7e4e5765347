"""Listings of audio files, Parquet shards of vectors, and the Dask client.

No estimator code here: reading a listing, writing and reading the
``(track_id, vector)`` shards atomically, and opening a ``dask.distributed``
client (a local cluster by default).
"""

import contextlib
import json
import os
from pathlib import Path

import numpy as np

from ..utils._atomic import atomic_write, temp_owner

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


def read_listing(source, *, column="path", id_column=None):
    """Return (paths, track_ids) of a folder, a text file or a table of paths.

    A folder is searched recursively for audio files (ids: the path relative
    to the folder); a ``.txt`` file holds one path per line (blank lines and
    ``#`` comments skipped; ids: the paths); a Parquet or CSV file has the
    paths in ``column`` and, optionally, the ids in ``id_column``. Relative
    paths in a file are taken relative to the file's folder.
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


def read_vectors(folder):
    """All shards of a folder as (track ids, float32 matrix), in shard order.

    ``folder`` may also be a single Parquet file.
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
