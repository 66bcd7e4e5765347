"""``sklearn-music embed FILES... --out vectors.npy|vectors.parquet``: one file, in-process.

FILES are audio files (id: the path as given), folders (searched recursively; ids:
the paths relative to the folder, prefixed by the folder when several FILES are
given) and listings (a text file of paths, or a Parquet/CSV table:
:func:`sklearn_music.batch.read_listing`). They are embedded in this process, a
batch at a time, with the model of ``--model`` or, without it, the pretrained
``soundtracks-v1`` (:func:`sklearn_music.pretrained.load`), and written to one file:

``.npy``
    The vectors, ``float32`` of shape ``(n_tracks, dim)``, and the ids in the
    sidecar ``<name>.ids.jsonl`` (one JSON value per line), as ``export`` writes them.
``.parquet`` (needs ``pyarrow``)
    Columns ``track_id`` and ``vector`` (fixed-size list of float32): the schema of
    the shards of the Dask ``embed``, so ``sklearn-music neighbours vectors.parquet``
    reads it.

Both files are written under temporary names and renamed when complete. Any other
``--out`` is the folder of Parquet shards written on Dask (``sklearn_music.batch``).
"""

import json
from pathlib import Path

import numpy as np

from ._cli_export import _replacing, sidecar

FILE_SUFFIXES = (".npy", ".parquet")


def is_file_output(out):
    """Whether ``--out`` names one vectors file (``.npy``/``.parquet``), not a folder."""
    return Path(out).suffix.lower() in FILE_SUFFIXES


def gather(sources, *, column="path", id_column=None):
    """The ``(paths, ids)`` of the FILES arguments, in order; ids are unique.

    Raises
    ------
    ValueError
        If a listing is invalid or two files get the same id.
    FileNotFoundError
        If an argument is neither a file nor a folder.
    """
    from .batch._shards import AUDIO_SUFFIXES, read_listing

    paths, ids = [], []
    for source in sources:
        src = Path(source)
        if src.is_file() and src.suffix.lower() in AUDIO_SUFFIXES:
            paths.append(str(src))
            ids.append(str(source))
            continue
        got, got_ids = read_listing(src, column=column, id_column=id_column)
        if src.is_dir() and len(sources) > 1:
            got_ids = [f"{src.as_posix()}/{i}" for i in got_ids]
        paths += got
        ids += got_ids
    seen = set()
    for i, t in enumerate(ids):
        if t in seen:
            raise ValueError(f"two files have the track id {t!r} (the second: {paths[i]!r})")
        seen.add(t)
    return paths, ids


def embed_files(model, paths, ids, *, batch_size, bar, skip_errors, warn):
    """Vectors of ``paths`` a batch at a time: ``(vectors, kept ids, skipped ids)``.

    An unreadable file stops the run with a ValueError naming it, or with
    ``skip_errors`` is reported with ``warn`` and left out.
    """
    from .io import AudioLoadError

    vectors, kept, skipped = [], [], []
    for start in range(0, len(paths), batch_size):
        batch = list(range(start, min(start + batch_size, len(paths))))
        try:
            vectors.append(model.transform([paths[i] for i in batch]))
            kept += [ids[i] for i in batch]
        except AudioLoadError:
            for i in batch:  # one at a time: find the unreadable files
                try:
                    vectors.append(model.transform([paths[i]]))
                    kept.append(ids[i])
                except AudioLoadError as exc:
                    reason = str(exc).split(": ", 1)[-1]
                    if not skip_errors:
                        raise ValueError(
                            f"{paths[i]}: {reason} (pass --skip-errors to skip unreadable files)"
                        ) from None
                    warn(f"skipping {paths[i]}: {reason}")
                    skipped.append(ids[i])
        bar.update(len(batch))
    if not kept:
        raise ValueError(f"none of the {len(paths)} audio files could be read")
    return np.vstack(vectors).astype(np.float32, copy=False), kept, skipped


def write_vectors(out, vectors, ids):
    """Write ``vectors`` and their ``ids`` to ``out`` (.npy + ids sidecar, or .parquet)."""
    out = Path(out)
    if out.suffix.lower() == ".npy":
        with _replacing(out) as tmp, _replacing(sidecar(out)) as tmp_ids:
            with open(tmp, "wb") as f:
                np.save(f, vectors)
            with open(tmp_ids, "w", encoding="ascii") as f:
                f.writelines(json.dumps(t) + "\n" for t in ids)
        return
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ValueError(
            "writing .parquet needs pyarrow (pip install pyarrow); or write to .npy"
        ) from None
    from .batch._shards import vectors_table, write_parquet_atomic

    write_parquet_atomic(vectors_table(ids, vectors), out)
