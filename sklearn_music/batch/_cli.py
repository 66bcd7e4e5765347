"""The ``embed``, ``neighbours`` and ``recommend-all`` subcommands of the CLI.

``sklearn_music.cli`` hooks them in with ``add_batch_parsers(sub,
parents=[common])``; each handler takes the parsed arguments and returns the
exit status.
"""

import os
import sys

from ..utils._argparse import positive_int


def _cluster_options(p, parents):
    g = p.add_argument_group("cluster")
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="Dask scheduler address (tcp://host:8786); default: a local cluster",
    )
    g.add_argument(
        "--workers",
        type=positive_int,
        default=2,
        metavar="N",
        help="worker processes of the local cluster (default: 2)",
    )
    if any("--no-progress" in q._option_string_actions for q in parents):
        return  # the parent parser has --progress / --no-progress (dest "progress")
    g.add_argument(
        "--no-progress",
        dest="progress",
        action="store_const",
        const=False,
        default=None,
        help="no progress bar (default: shown on a terminal)",
    )


def add_batch_parsers(subparsers, *, parents=()):
    """Add the catalogue-scale subcommands to an ``argparse`` subparsers object.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    parents : sequence of argparse.ArgumentParser, default=()
        Parsers whose options every subcommand also takes.

    Returns
    -------
    None
        The subcommands are added to ``subparsers``.

    Examples
    --------
    >>> import argparse
    >>> from sklearn_music.batch import add_batch_parsers
    >>> parser = argparse.ArgumentParser(prog="sklearn-music")
    >>> add_batch_parsers(parser.add_subparsers(dest="command"))
    >>> parser.parse_args(["neighbours", "vec/", "--store", "s.db"]).workers
    2
    """
    parents = list(parents)
    p = subparsers.add_parser(
        "embed",
        parents=parents,
        help="embed a catalogue of audio files on a Dask cluster into Parquet shards",
        description="Embed every file of LISTING (a folder, a text file of paths, or a "
        "Parquet/CSV table) with a saved model (default: the pretrained "
        "soundtracks-v1) into OUT/part-*.parquet (track_id, vector) on Dask. "
        "Rerunning skips the finished shards; failing files go to "
        "OUT/errors.parquet. With --out ending in .npy or .parquet, FILES (audio "
        "files, folders and listings, any number) are embedded in this process "
        "into that one file (.npy: ids in OUT.ids.jsonl beside it).",
    )
    p.add_argument("listing", metavar="FILES", nargs="+")
    p.add_argument(
        "--model",
        default=None,
        help="a model saved by `fit` (.skops) or a pretrained model's name; default: "
        "the pretrained soundtracks-v1",
    )
    p.add_argument(
        "--out",
        required=True,
        help="vectors.npy or vectors.parquet (one file, in-process), else the folder "
        "of the vector shards (Dask)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=16,
        metavar="N",
        help="files embedded at a time in-process (default: 16)",
    )
    p.add_argument(
        "--skip-errors",
        action="store_true",
        help="in-process: skip unreadable files (reported) instead of failing",
    )
    p.add_argument("--column", default="path", help="column of paths in a table (default: path)")
    p.add_argument("--id-column", default=None, help="column of track ids in a table")
    p.add_argument("--partition-size", type=positive_int, default=256, metavar="N")
    p.add_argument("--torch-threads", type=positive_int, default=1, metavar="N")
    _cluster_options(p, parents)
    p.set_defaults(func=cmd_embed)

    p = subparsers.add_parser(
        "neighbours",
        parents=parents,
        help="build a similarity store from vector shards on a Dask cluster",
        description="Fit the approximate index on the vectors in VECTORS (a folder of "
        "shards or one Parquet file), take every track's similar tracks from the "
        "index's neighbour graph (or search them on the workers) and stream them "
        "into the store.",
    )
    p.add_argument("vectors", metavar="VECTORS")
    p.add_argument("--store", required=True, help="the similarity store to write")
    p.add_argument("--neighbors", type=positive_int, default=10, metavar="K")
    p.add_argument("--metric", choices=["cosine", "euclidean"], default="cosine")
    p.add_argument("--algorithm", choices=["auto", "brute", "nndescent"], default="auto")
    p.add_argument(
        "--neighbours-from",
        choices=["auto", "graph", "search"],
        default="auto",
        help="the lists from the nndescent index's own neighbour graph (no search, no "
        "cluster) or searched on the workers; auto: the graph when there is one",
    )
    p.add_argument("--block-size", type=positive_int, default=20000, metavar="N")
    _cluster_options(p, parents)
    p.set_defaults(func=cmd_neighbours)

    p = subparsers.add_parser(
        "recommend-all",
        parents=parents,
        help="recommend tracks for every user of a listening table on a Dask cluster",
        description="Read LISTENING (Parquet/CSV: user_id, track_id[, plays]) and write "
        "every user's top-N unheard tracks to OUT/part-*.parquet (user_id, rank, "
        "track_id, score), optionally into the store too.",
    )
    p.add_argument("listening", metavar="LISTENING")
    p.add_argument("--store", required=True, help="the similarity store")
    p.add_argument("--out", required=True, help="folder of the recommendation shards")
    p.add_argument("-n", type=positive_int, default=10, help="tracks per user (default: 10)")
    p.add_argument("--exhaustive", action="store_true", help="score every stored track")
    p.add_argument("--min-plays", type=int, default=1, metavar="N")
    p.add_argument(
        "--into-store", action="store_true", help="also store each user's list (one lookup)"
    )
    p.add_argument("--users-per-task", type=positive_int, default=5000, metavar="N")
    _cluster_options(p, parents)
    p.set_defaults(func=cmd_recommend_all)


def _progress(args):
    progress = getattr(args, "progress", None)
    if progress is None and getattr(args, "verbose", False):
        return True
    return progress


def cmd_embed(args):
    """Run ``embed``; return the exit status (0, also when files failed)."""
    from ..persistence import load_model
    from ..pretrained import available_models, load
    from ._embed import embed_catalogue

    listing = args.listing if isinstance(args.listing, str) else list(args.listing)
    if not isinstance(listing, str):
        if len(listing) != 1:
            raise ValueError(
                f"{len(listing)} FILES: the shard folder of --out takes one LISTING (a "
                "folder or a file of paths); several FILES go into one file: --out "
                "vectors.npy or vectors.parquet"
            )
        listing = listing[0]
    name = args.model or "soundtracks-v1"
    if name in available_models() and not os.path.exists(name):  # a pretrained model
        model = load(name)
    else:
        model = load_model(args.model)
    out = embed_catalogue(
        model,
        listing,
        args.out,
        scheduler=args.scheduler,
        n_workers=args.workers,
        partition_size=args.partition_size,
        column=args.column,
        id_column=args.id_column,
        torch_threads=args.torch_threads,
        progress=_progress(args),
    )
    print(
        f"{out['n_tracks']} tracks in {out['n_partitions']} shards in {args.out} "
        f"({out['n_written']} written now, {out['n_skipped']} already there)"
    )
    if out["n_errors"]:
        print(f"{out['n_errors']} files failed; see {args.out}/errors.parquet", file=sys.stderr)
    return 0


def cmd_neighbours(args):
    """Run ``neighbours``; return the exit status."""
    from ._neighbours import build_store_from_vectors

    n = build_store_from_vectors(
        args.vectors,
        args.store,
        n_neighbors=args.neighbors,
        metric=args.metric,
        algorithm=args.algorithm,
        neighbours_from=args.neighbours_from,
        scheduler=args.scheduler,
        n_workers=args.workers,
        block_size=args.block_size,
        progress=_progress(args),
    )
    print(f"{n} tracks with {args.neighbors} similar tracks each in {args.store}")
    return 0


def cmd_recommend_all(args):
    """Run ``recommend-all``; return the exit status."""
    from ._recommend import recommend_all

    out = recommend_all(
        args.listening,
        args.store,
        args.out,
        n=args.n,
        exhaustive=args.exhaustive,
        min_plays=args.min_plays,
        into_store=args.into_store,
        scheduler=args.scheduler,
        n_workers=args.workers,
        users_per_task=args.users_per_task,
        progress=_progress(args),
    )
    print(f"recommendations for {out['n_users']} users in {args.out}")
    return 0
