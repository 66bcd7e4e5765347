"""``sklearn-music export``: every stored id and vector to .npy, .parquet or .csv.

The store is read in batches (:meth:`SimilarityStore.iter_vectors`) and each
batch is written before the next is read, so memory stays bounded by the batch.
The files are written under temporary names in the target folder and renamed
when complete: an interrupted export leaves no partial file behind.

``.npy``
    The vectors, ``float32`` of shape ``(n_tracks, dim)`` (``numpy.load``), and a
    sidecar ``<name>.ids.jsonl`` next to it: one JSON value per line, the id of
    the vector of the same row (a string, or a number for a store of int ids).
    JSON keeps any id on one line, newlines and tabs included.
``.parquet`` (needs ``pyarrow``)
    Columns ``track`` (string or int64) and ``vector`` (fixed-size list of
    ``dim`` float32), one row group per batch.
``.csv``
    A header ``track,v0,...,v<dim-1>``, one row per track, quoted as :mod:`csv`
    does; the values are written in full precision (they read back as the
    same float32).
"""

import contextlib
import csv
import json
import os
from pathlib import Path

import numpy as np

SUFFIXES = (".npy", ".parquet", ".csv")


class ExportError(Exception):
    """An export that cannot be written; the message says why."""


def sidecar(out):
    """The ids file that goes with a ``.npy`` export: ``vectors.npy`` -> ``vectors.ids.jsonl``."""
    out = Path(out)
    return out.with_name(out.stem + ".ids.jsonl")


@contextlib.contextmanager
def _replacing(path):
    """A temporary path next to ``path``, renamed onto it on success, removed on failure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def export(store, out, *, batch_size, bar):
    """Write ``store``'s ids and vectors to ``out`` (format from its suffix); the row count."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise ExportError(
            f"cannot export to {str(out)!r}: the file name must end in "
            f"{', '.join(SUFFIXES)} (the format is taken from it)"
        )
    if not out.parent.is_dir():
        raise ExportError(
            f"cannot export to {str(out)!r}: the folder {str(out.parent)!r} is missing"
        )
    writer = {".npy": _npy, ".parquet": _parquet, ".csv": _csv}[suffix]
    batches = store.iter_vectors(batch_size=batch_size)
    return writer(store, out, _counted(batches, bar))


def _counted(batches, bar):
    for ids, X in batches:
        yield ids, X
        bar.update(len(ids))


def _npy(store, out, batches):
    n = len(store)
    with _replacing(out) as tmp, _replacing(sidecar(out)) as tmp_ids:
        vectors = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, store.dim))
        row = 0
        with open(tmp_ids, "w", encoding="ascii") as ids_file:
            for ids, X in batches:
                vectors[row : row + len(X)] = X
                row += len(X)
                ids_file.writelines(json.dumps(t) + "\n" for t in ids.tolist())
        vectors.flush()
        del vectors
        if row != n:
            raise ExportError(f"the store {str(store.path)!r} holds {row} rows, not {n}")
    return row


def _parquet(store, out, batches):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportError(
            "exporting to .parquet needs pyarrow (pip install pyarrow); or export to .npy or .csv"
        ) from None
    id_type = pa.int64() if store.id_type is int else pa.string()
    schema = pa.schema([("track", id_type), ("vector", pa.list_(pa.float32(), store.dim))])
    row = 0
    with _replacing(out) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer:
            for ids, X in batches:
                try:
                    track = pa.array(ids.tolist(), type=id_type)
                except (pa.ArrowException, UnicodeError) as exc:
                    raise ExportError(f"a track id cannot be written to Parquet: {exc}") from None
                vector = pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), store.dim)
                writer.write_table(pa.Table.from_arrays([track, vector], schema=schema))
                row += len(ids)
    return row


def _csv(store, out, batches):
    row = 0
    with _replacing(out) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["track", *(f"v{j}" for j in range(store.dim))])
            for ids, X in batches:
                writer.writerows([t, *map(repr, v)] for t, v in zip(ids.tolist(), X.tolist()))
                row += len(ids)
    return row
