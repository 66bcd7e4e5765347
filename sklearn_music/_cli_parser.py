"""The ``sklearn-music`` argument parser: the table of subcommands and options.

Kept apart from :mod:`sklearn_music.cli`, which holds what each command does.
"""

import argparse

from ._pretrained_weights import MODELS
from .utils._argparse import positive_int

MODEL_NAMES = sorted(MODELS)

PROG = "sklearn-music"


def _add_device(p):
    p.add_argument(
        "--device",
        default="cpu",
        help="torch device of the embedder: cpu (default), cuda or cuda:N; the saved "
        "model is moved back to the CPU",
    )


def _add_query_options(p):
    p.add_argument("--store", required=True, help="store file from `index`")
    p.add_argument(
        "--model",
        default=None,
        help="the model that indexed the store (.skops; soundtracks-v1 for a store "
        "indexed without --model), to embed audio-file queries",
    )
    p.add_argument("-k", type=positive_int, default=10, help="number of tracks (default 10)")
    p.add_argument(
        "--format",
        choices=["text", "json", "csv"],
        default="text",
        help="text: 'score<TAB>track' lines, ids escaped (default); json: one object; "
        "csv: rank,track,score rows",
    )


def build_parser(commands):
    """The argument parser; ``commands`` maps each subcommand to its handler."""
    # -v and --debug are accepted before and after the subcommand: the top parser
    # and every subcommand take them from `common`, whose SUPPRESS default keeps a
    # subcommand from resetting what the top level set (main fills in False)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="more detail: skorch's table of epochs instead of a bar per training",
    )
    common.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help="show (or hide) a progress bar per stage on stderr; default: shown "
        "when stderr is a terminal",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of an error",
    )

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Content-based music similarity: train a model on a music "
        "folder, index a folder into a similarity store, query it.",
        parents=[common],
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "fit",
        parents=[common],
        help="train a model on a music folder",
        description="Train spectrogram -> CNN embedding -> nearest-tracks on the "
        "audio files under MUSIC_DIR and save the fitted pipeline (skops format). "
        "Labelled layout: MUSIC_DIR/<label>/<track>; with --unlabeled any layout.",
    )
    p.add_argument("music_dir", metavar="MUSIC_DIR")
    p.add_argument("--model", required=True, help="model file to write (.skops)")
    p.add_argument(
        "--unlabeled",
        action="store_true",
        help="no labels: train on the stand-in task chosen by --task",
    )
    p.add_argument(
        "--task",
        choices=["track", "contrastive"],
        default="track",
        help="stand-in task with --unlabeled: 'track' = tell apart "
        "excerpts of different tracks with one output per track (default); "
        "'contrastive' = two excerpts of a track against the other tracks of "
        "a batch (no output per track, scales to any number of tracks)",
    )
    p.add_argument("--epochs", type=positive_int, default=20, help="training epochs (default 20)")
    p.add_argument(
        "--embedding-dim",
        type=positive_int,
        default=128,
        help="size of the embeddings (default 128, the pretrained model's: see --init)",
    )
    p.add_argument(
        "--init",
        choices=["auto", "none", *MODEL_NAMES],
        default="auto",
        help="where training starts: 'auto' (default) fine-tunes the pretrained "
        "soundtracks-v1 when the settings are its own (--sr 16000, --embedding-dim 128) "
        "and starts from random weights otherwise; a model name fine-tunes it (an error "
        "if the settings differ); 'none' starts from random weights",
    )
    p.add_argument(
        "--patch-frames",
        type=positive_int,
        default=None,
        help="spectrogram frames per training patch (default: the embedder's)",
    )
    p.add_argument(
        "--sr",
        type=positive_int,
        default=16000,
        help="sampling rate the audio is resampled to (default 16000)",
    )
    p.add_argument(
        "--duration", type=float, default=None, help="seconds of each track to use (default: all)"
    )
    p.add_argument(
        "-k",
        "--n-neighbors",
        type=positive_int,
        default=10,
        help="neighbours of the model's index (default 10)",
    )
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    p.add_argument(
        "--no-eval",
        action="store_true",
        help="skip the held-out score (3-fold cross-validation over tracks, MFCC "
        "statistics as the reference) that fit prints before training on everything",
    )
    _add_device(p)
    p.set_defaults(func=commands["fit"])

    p = sub.add_parser(
        "index",
        parents=[common],
        help="embed a music folder into a similarity store",
        description="Embed every audio file under MUSIC_DIR with a fitted model "
        "(default: the pretrained soundtracks-v1, no `fit` needed) and "
        "write each track's vector and similar tracks to a store. Track ids are the "
        "paths relative to MUSIC_DIR. An unreadable file stops the run unless "
        "--skip-errors is given.",
    )
    p.add_argument("music_dir", metavar="MUSIC_DIR")
    p.add_argument(
        "--model",
        default=None,
        help="model file from `fit` (.skops) or a pretrained model's name; default: "
        "the pretrained soundtracks-v1",
    )
    p.add_argument("--store", required=True, help="store file to write (.db)")
    p.add_argument(
        "-k", type=positive_int, default=10, help="similar tracks stored per track (default 10)"
    )
    p.add_argument(
        "--skip-errors",
        action="store_true",
        help="skip unreadable files (reported, counted) instead of failing",
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=16, help="files embedded at a time (default 16)"
    )
    _add_device(p)
    p.set_defaults(func=commands["index"])

    p = sub.add_parser(
        "similar",
        parents=[common],
        help="print the tracks most similar to a track or an audio file",
        description="Print the tracks most similar to TRACK, most similar first. "
        "TRACK is a stored track id (the path relative to the indexed folder) or, "
        "if it is not one, an audio file, embedded with --model and searched by a "
        "scan of every stored vector. With -k above the similar tracks stored per "
        "track (index -k), every stored vector is scanned too.",
    )
    p.add_argument(
        "track", metavar="TRACK", help="a stored track id, or an audio file (needs --model)"
    )
    _add_query_options(p)
    p.set_defaults(func=commands["similar"])

    p = sub.add_parser(
        "recommend",
        parents=[common],
        help="recommend tracks for a listening history",
        description="Print tracks close to the given tracks (stored ids or audio "
        "files), best first; the given tracks are left out. --aggregate mean: close "
        "to the mean of their vectors; clusters: one list per k-means cluster of "
        "the history (at most 3), merged in turn, so that every taste is kept.",
    )
    p.add_argument("tracks", metavar="TRACK", nargs="+", help="stored track ids or audio files")
    _add_query_options(p)
    p.add_argument(
        "--exhaustive",
        action="store_true",
        help="score every stored track instead of searching the stored similar-track "
        "lists from the history (always so for a history with audio files)",
    )
    p.add_argument(
        "--aggregate",
        choices=["mean", "clusters"],
        default="mean",
        help="one query from the history's mean (default), or one per cluster of it",
    )
    p.set_defaults(func=commands["recommend"])

    p = sub.add_parser(
        "export",
        parents=[common],
        help="write every stored id and vector to .npy, .parquet or .csv",
        description="Write the ids and vectors of a store, read in batches. The "
        "format comes from the suffix of --out: .npy (the vectors; the ids go to "
        "<name>.ids.jsonl beside it, one JSON value a line), .parquet (columns track "
        "and vector; needs pyarrow) or .csv (track,v0,v1,...).",
    )
    p.add_argument("--store", required=True, help="store file from `index`")
    p.add_argument("--out", required=True, help="file to write: .npy, .parquet or .csv")
    p.add_argument(
        "--batch-size", type=positive_int, default=65536, help="rows per batch (default 65536)"
    )
    p.set_defaults(func=commands["export"])

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="run the end-to-end demo on synthetic music",
        description="Run the demo on synthetic music: spectrograms, a baseline, "
        "the CNN embedder, nearest tracks and their retrieval scores, "
        "recommendations, cold start, the similarity store.",
    )
    p.add_argument(
        "--n-tracks",
        type=positive_int,
        default=None,
        help="synthetic tracks (default: the demo's)",
    )
    p.add_argument(
        "--duration", type=float, default=None, help="seconds per track (default: the demo's)"
    )
    p.add_argument(
        "--epochs",
        dest="max_epochs",
        type=positive_int,
        default=None,
        help="training epochs (default: the demo's)",
    )
    p.set_defaults(func=commands["demo"])

    from .serve import add_serve_parser  # light: the web framework loads in run_serve

    add_serve_parser(sub, parents=[common])
    from .batch import add_batch_parsers  # light: dask loads when a command runs

    add_batch_parsers(sub, parents=[common])
    from .report import add_report_parser  # light: matplotlib loads when it runs

    add_report_parser(sub, parents=[common])
    if "embed" in commands:  # one vectors file in-process, else the Dask shards
        sub.choices["embed"].set_defaults(func=commands["embed"])
    return parser
