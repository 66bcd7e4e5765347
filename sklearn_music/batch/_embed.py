"""Batch embedding of a catalogue of audio files on a Dask cluster."""

import hashlib
from pathlib import Path

import numpy as np

from ..utils._sklearn_compat import HasMethods, validate_params
from . import _shards


def embedding_steps(model):
    """The steps of a fitted model that turn audio into vectors.

    A Pipeline whose last step cannot ``transform`` (a fitted
    :class:`~sklearn_music.NearestTracks`) loses that step.
    """
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline) and len(model) > 1 and not hasattr(model[-1], "transform"):
        return model[:-1]
    if not hasattr(model, "transform"):
        raise TypeError(f"{type(model).__name__} cannot transform audio into vectors")
    return model


def set_torch_threads(n):
    """Fix torch's intra-op thread count (deterministic reductions); no-op without torch."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is optional
        return
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _split(model):
    """(front, rest): the first step, run file by file, and the steps after it."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        return model[0], (model[1:] if len(model) > 1 else None)
    return model, None


def _error(exc):
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def embed_partition(model, index, paths, track_ids, output, torch_threads):
    """Embed one partition and write its shard (and errors file); run on a worker.

    The first step runs file by file so that a failing file is recorded in
    the errors table and the others go on; the later steps run on the
    partition's spectrograms together. The errors file is written before the
    shard, and the shard last: an existing shard means a finished partition,
    so a retried or rerun partition is never written twice.
    """
    import pyarrow as pa

    output = Path(output)
    shard = output / _shards.shard_name(index)
    if shard.is_file():  # finished by an earlier attempt
        return {"index": index, "skipped": True}
    set_torch_threads(torch_threads)
    front, rest = _split(model)
    ok_ids, feats, errors = [], [], []
    for path, tid in zip(paths, track_ids):
        try:
            feats.append(front.transform([path])[0])
            ok_ids.append(tid)
        except Exception as exc:  # noqa: BLE001 - every failure goes to the table
            errors.append((tid, path, _error(exc)))
    vectors = np.empty((0, 0), dtype=np.float32)
    if feats and rest is not None:
        try:
            vectors = rest.transform(feats)
        except Exception:  # noqa: BLE001 - find the culprit file by file
            vectors, keep = [], []
            for tid, f in zip(ok_ids, feats):
                try:
                    vectors.append(rest.transform([f])[0])
                    keep.append(tid)
                except Exception as exc:  # noqa: BLE001
                    errors.append((tid, paths[track_ids.index(tid)], _error(exc)))
            ok_ids = keep
            vectors = np.array(vectors) if vectors else np.empty((0, 0))
    elif feats:
        vectors = np.stack([np.ravel(f) for f in feats])
    errors_table = pa.table(
        {
            "track_id": pa.array([e[0] for e in errors], type=_id_type(track_ids)),
            "path": pa.array([e[1] for e in errors], type=pa.string()),
            "error": pa.array([e[2] for e in errors], type=pa.string()),
        }
    )
    _shards.write_parquet_atomic(errors_table, output / _shards.errors_name(index))
    _shards.write_parquet_atomic(_shards.vectors_table(ok_ids, vectors), shard)
    return {"index": index, "skipped": False, "n_tracks": len(ok_ids), "n_errors": len(errors)}


def _id_type(track_ids):
    import pyarrow as pa

    return pa.int64() if track_ids and isinstance(track_ids[0], (int, np.integer)) else pa.string()


def listing_digest(paths, track_ids):
    """A SHA-1 of the listing, to tell a rerun of the same job from another job."""
    h = hashlib.sha1()
    for p, t in zip(paths, track_ids):
        h.update(f"{p}\0{t}\n".encode())
    return h.hexdigest()


def run_partitions(client, func, args_of, indices, *, window, progress):
    """Submit ``func(*args_of(i))`` for each index, at most ``window`` at a time.

    Yields each result as it completes; a worker that dies mid-task has the
    task rescheduled by the Dask scheduler.
    """
    from dask.distributed import as_completed

    todo = iter(indices)
    running = as_completed()
    for i in todo:
        running.add(client.submit(func, *args_of(i), key=f"{func.__name__}-{i}", pure=False))
        if running.count() >= window:
            break
    for fut in running:
        result = fut.result()
        fut.release()
        progress.update(1)
        nxt = next(todo, None)
        if nxt is not None:
            running.add(
                client.submit(func, *args_of(nxt), key=f"{func.__name__}-{nxt}", pure=False)
            )
        yield result


def collect_errors(output, n_partitions):
    """Concatenate the partitions' errors files into ``errors.parquet``; return the table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    output = Path(output)
    parts = [output / _shards.errors_name(i) for i in range(n_partitions)]
    tables = [pq.read_table(p) for p in parts if p.is_file()]
    tables = [t for t in tables if t.num_rows]
    if tables:
        table = pa.concat_tables(tables, promote_options="default")
    else:
        table = pa.table(
            {
                "track_id": pa.array([], pa.string()),
                "path": pa.array([], pa.string()),
                "error": pa.array([], pa.string()),
            }
        )
    _shards.write_parquet_atomic(table, output / "errors.parquet")
    return table


@validate_params(
    {
        "model": [HasMethods(["transform"])],
        "listing": _shards.PATH,
        "output": _shards.PATH,
        **_shards.CLUSTER,
        "partition_size": _shards.POSITIVE,
        "column": [str],
        "id_column": [str, None],
        "torch_threads": _shards.POSITIVE,
    },
    prefer_skip_nested_validation=True,
)
def embed_catalogue(
    model,
    listing,
    output,
    *,
    scheduler=None,
    n_workers=2,
    partition_size=256,
    column="path",
    id_column=None,
    torch_threads=1,
    progress=None,
):
    """Embed a catalogue of audio files on a Dask cluster into Parquet shards.

    The files are split into partitions of ``partition_size`` in listing
    order; each partition is embedded on a worker and written to
    ``output/part-NNNNNN.parquet`` with columns ``track_id`` and ``vector``
    (fixed-size list of float32). The model is scattered to every worker once.

    Parameters
    ----------
    model : Pipeline or transformer
        A fitted model that turns audio paths into vectors, such as
        ``make_pipeline(MelSpectrogramTransformer(), ConvEmbedder())``; a last
        step without ``transform`` (a :class:`~sklearn_music.NearestTracks`)
        is dropped.
    listing : str or path-like
        A folder (searched recursively for audio files), a text file of paths
        (one per line) or a Parquet/CSV table with the paths in ``column``.
    output : str or path-like
        Folder of the shards; created if missing. A rerun with the same
        listing and ``partition_size`` skips the partitions already written.
    scheduler : str or dask.distributed.Client, default=None
        A scheduler address (``"tcp://host:8786"``) or a client; None starts a
        local cluster of ``n_workers`` single-threaded processes.
    n_workers : int, default=2
        Workers of the local cluster (ignored with ``scheduler``).
    partition_size : int, default=256
        Files per partition (per shard).
    column : str, default="path"
        Column of paths in a table listing.
    id_column : str, default=None
        Column of track ids in a table listing; None: ids are the paths as
        listed (for a folder: the paths relative to it).
    torch_threads : int, default=1
        Threads of torch per task; fixed so that the vectors are reproducible.
    progress : bool, default=None
        Show a progress bar; None shows it when stderr is a terminal.

    Returns
    -------
    summary : dict
        ``n_partitions``, ``n_written`` and ``n_skipped`` partitions,
        ``n_tracks`` embedded, ``n_errors`` and ``errors``, the
        :class:`pyarrow.Table` of failed files (``track_id, path, error``),
        also written to ``output/errors.parquet``.

    Examples
    --------
    >>> import numpy as np, soundfile as sf
    >>> from sklearn_music import MelSpectrogramTransformer
    >>> from sklearn_music.batch import embed_catalogue, read_vectors
    >>> folder = getfixture("tmp_path") / "music"
    >>> folder.mkdir()
    >>> for i in range(3):
    ...     sf.write(folder / f"{i}.wav", np.sin(np.arange(4000) * (i + 1) / 50), 8000)
    >>> mel = MelSpectrogramTransformer(sr=8000, n_fft=256, n_mels=8, duration=0.25)
    >>> mel = mel.fit([str(folder / "0.wav")])
    >>> out = embed_catalogue(mel, folder, folder.parent / "vectors", n_workers=1)
    >>> out["n_tracks"], out["n_errors"]
    (3, 0)
    >>> ids, vectors = read_vectors(folder.parent / "vectors")
    >>> ids, vectors.shape
    (['0.wav', '1.wav', '2.wav'], (3, 32))
    """
    paths, track_ids = _shards.read_listing(listing, column=column, id_column=id_column)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    _shards.clean_stale(output)
    n = len(paths)
    n_parts = -(-n // partition_size)
    _shards.write_manifest(
        output,
        {
            "n_files": n,
            "partition_size": partition_size,
            "listing": listing_digest(paths, track_ids),
        },
    )
    todo = [i for i in range(n_parts) if not (output / _shards.shard_name(i)).is_file()]
    steps = embedding_steps(model)
    summary = {"n_partitions": n_parts, "n_written": 0, "n_skipped": n_parts - len(todo)}
    with _shards.dask_client(scheduler, n_workers=n_workers) as client:
        if todo:
            shared = client.scatter(steps, broadcast=True, hash=False)
            n_conn = max(1, len(client.scheduler_info().get("workers", {})))

            def args_of(i):
                lo, hi = i * partition_size, min(n, (i + 1) * partition_size)
                return shared, i, paths[lo:hi], track_ids[lo:hi], str(output), torch_threads

            bar = _shards.progress_bar(len(todo), desc="embedding", show=progress)
            with bar:
                for r in run_partitions(
                    client, embed_partition, args_of, todo, window=2 * n_conn + 2, progress=bar
                ):
                    summary["n_written"] += not r["skipped"]
    errors = collect_errors(output, n_parts)
    summary["n_tracks"] = _count_rows(output, n_parts)
    summary["n_errors"] = errors.num_rows
    summary["errors"] = errors
    return summary


def _count_rows(output, n_parts):
    import pyarrow.parquet as pq

    return sum(
        pq.ParquetFile(output / _shards.shard_name(i)).metadata.num_rows for i in range(n_parts)
    )
