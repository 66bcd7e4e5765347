"""The ``report`` subcommand: a listening report of a store, or a blind A/B of two.

``sklearn_music._cli_parser.build_parser`` hooks it in with
``add_report_parser(sub, parents=[common])``; the handler returns the exit status.
"""

from ..utils._argparse import positive_int


def add_report_parser(subparsers, *, parents=()):
    """Add the ``report`` subcommand to an ``argparse`` subparsers object.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.
    parents : sequence of argparse.ArgumentParser, default=()
        Parsers whose options the subcommand also takes.

    Returns
    -------
    None
        The subcommand is added to ``subparsers``.

    Examples
    --------
    >>> import argparse
    >>> from sklearn_music.report import add_report_parser
    >>> parser = argparse.ArgumentParser(prog="sklearn-music")
    >>> add_report_parser(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["report", "--store", "s.db", "--music-dir", "m",
    ...                           "--out", "r"])
    >>> args.queries, args.k
    (20, 10)
    """
    p = subparsers.add_parser(
        "report",
        parents=list(parents),
        help="write a static listening report (HTML) for assessors, or a blind A/B of two stores",
        description="Write a folder with index.html that opens in any browser without "
        "a server: per query track an excerpt, its nearest tracks with players, scores, "
        "labels and mel thumbnails, and similar / not similar / unsure buttons whose "
        "judgments download as JSON (score them with "
        "sklearn_music.metrics.assessor_report). With --store-a and --store-b the "
        "neighbours of both stores are mixed blind; the key goes to OUT.key.json, "
        "beside the folder.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--store", help="store file from `index`")
    src.add_argument("--store-a", help="store A of a blind A/B report (needs --store-b)")
    p.add_argument("--store-b", default=None, help="store B of a blind A/B report")
    p.add_argument("--music-dir", required=True, help="the folder that was indexed")
    p.add_argument("--out", required=True, help="report folder to write")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--queries", type=positive_int, default=20, help="random query tracks (default 20)"
    )
    which.add_argument("--tracks", nargs="+", metavar="ID", help="these query tracks")
    p.add_argument("-k", type=positive_int, default=10, help="neighbours per query (default 10)")
    p.add_argument(
        "--model",
        default=None,
        help="the model that indexed the store (.skops): excerpts at each track's most "
        "representative moment and a 'why similar' heat map per pair",
    )
    p.add_argument(
        "--excerpt-seconds", type=float, default=15.0, help="excerpt length (default 15)"
    )
    p.add_argument(
        "--analysis-seconds",
        type=float,
        default=60.0,
        help="with --model: seconds in the middle of each track embedded patch by patch "
        "(default 60; 0 = the whole track)",
    )
    p.add_argument("--no-labels", action="store_true", help="do not show the first folder")
    p.add_argument("--title", default=None, help="title of the page")
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    p.set_defaults(func=cmd_report)


def cmd_report(args):
    """Run ``report``; return the exit status."""
    from ._write import write_report

    if args.store_a is not None and args.store_b is None:
        raise ValueError("--store-a needs --store-b (a blind A/B report compares two stores)")
    if args.store is not None and args.store_b is not None:
        raise ValueError("--store-b goes with --store-a, not --store")
    result = write_report(
        args.store if args.store is not None else args.store_a,
        store_b=args.store_b,
        music_dir=args.music_dir,
        out=args.out,
        queries=args.queries,
        tracks=args.tracks,
        k=args.k,
        model=args.model,
        labels=None if args.no_labels else "folder",
        excerpt_seconds=args.excerpt_seconds,
        analysis_seconds=args.analysis_seconds or None,
        title=args.title,
        random_state=args.random_state,
    )
    print(
        f"wrote {result.index} ({result.n_queries} queries, {result.n_items} pairs, "
        f"{result.n_tracks} excerpts, {result.size / 1e6:.1f} MB)"
    )
    if result.key is not None:
        print(f"the A/B key is in {result.key}: keep it from the assessors")
    return 0
