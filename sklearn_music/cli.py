"""The ``sklearn-music`` command line (also ``python -m sklearn_music``).

Subcommands::

    sklearn-music fit MUSIC_DIR --model model.skops [--unlabeled] [--epochs N]
    sklearn-music index MUSIC_DIR --model model.skops --store tracks.db [--skip-errors]
    sklearn-music similar TRACK --store tracks.db -k 10
    sklearn-music recommend TRACK [TRACK ...] --store tracks.db -k 10
    sklearn-music demo

Exit status: 0 on success, 1 on a runtime error (a one-line message on
stderr; ``--debug`` shows the traceback instead), 2 on a usage error, 130 when
interrupted.

``fit`` trains ``MelSpectrogramTransformer -> ConvEmbedder -> NearestTracks`` on the
folder-per-label layout ``MUSIC_DIR/<label>/<track>`` (or, with ``--unlabeled``,
on the stand-in task ``--task track``: tell apart excerpts of different
tracks) and saves the fitted pipeline with
:func:`sklearn_music.persistence.save_model`. ``index`` embeds any folder of
audio with a saved model and writes a
:class:`~sklearn_music.store.SimilarityStore` whose track ids are the paths
relative to ``MUSIC_DIR``; ``similar`` and ``recommend`` query it.
"""

import argparse
import os
import sys
from pathlib import Path

__all__ = ["main"]

PROG = "sklearn-music"


class CommandError(Exception):
    """A runtime error reported to the user as one line, exit status 1."""


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _collection(music_dir, *, labeled):
    """(files, ids, labels) of a music folder; ids are paths relative to it."""
    from .datasets import load_audio_folder

    music_dir = Path(music_dir)
    found = load_audio_folder(music_dir, labeled=labeled)
    files = [Path(f) for f in found.filenames]
    ids = [_escape_id(f.relative_to(music_dir).as_posix()) for f in files]
    labels = None
    if labeled:
        labels = [found.target_names[t] for t in found.target]
    return files, ids, labels


def _escape_id(name):
    """A file name's bytes that are not UTF-8 (lone surrogates in Python) as ``\\xNN``.

    Such ids could be neither saved nor printed; the escaped form is kept in the
    model and the store, and TRACK arguments are escaped the same way.
    """
    if name.isascii():
        return name
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _check_output(path, what):
    """Fail before any work when ``path`` cannot be written (folder missing...)."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise CommandError(f"cannot write the {what} to {str(path)!r}: it is a folder")
    if not folder.is_dir():
        raise CommandError(
            f"cannot write the {what} to {str(path)!r}: the folder {str(folder)!r} does not exist"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CommandError(
            f"cannot write the {what} to {str(path)!r}: the folder {str(folder)!r} is not writable"
        )


def _progress(iterable, verbose, **kwargs):
    if not verbose:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, file=sys.stderr, **kwargs)


def _warn(args, message):
    """One line on stderr, printed around the progress bar when there is one."""
    if args.verbose:
        from tqdm.auto import tqdm

        tqdm.write(f"{PROG}: {message}", file=sys.stderr)
    else:
        print(f"{PROG}: {message}", file=sys.stderr)


def _open_store(path):
    from .store import SimilarityStore

    try:
        return SimilarityStore(path)
    except FileNotFoundError:
        raise CommandError(
            f"no store at {str(path)!r}; make one with `{PROG} index MUSIC_DIR "
            f"--model MODEL --store {path}`"
        ) from None


def _track_key(store, track):
    track = _escape_id(track)
    if store.id_type is int:
        try:
            return int(track)
        except ValueError:
            raise CommandError(
                f"unknown track {track!r}: the ids in {str(store.path)!r} are integers"
            ) from None
    return track


def _print_pairs(pairs):
    for track, score in pairs:
        print(f"{score:.4f}\t{track}")


# --------------------------------------------------------------------------- #
# subcommands
# --------------------------------------------------------------------------- #
def _cmd_fit(args):
    import numpy as np
    from sklearn.pipeline import Pipeline

    from . import ConvEmbedder, MelSpectrogramTransformer, NearestTracks
    from .persistence import save_model

    _check_output(args.model, "model")
    files, ids, labels = _collection(args.music_dir, labeled=not args.unlabeled)
    if args.unlabeled:
        # stand-in task "track": every track is its own class, so the network
        # learns to tell apart excerpts of different tracks
        y = np.arange(len(files))
        what = f"{len(files)} tracks, unlabeled (task {args.task!r})"
    else:
        if len(set(labels)) < 2:
            raise CommandError(
                f"found a single label folder {labels[0]!r} in {args.music_dir!r}; "
                "training needs at least 2 (or pass --unlabeled)"
            )
        y = np.asarray(labels)
        what = f"{len(files)} tracks, {len(set(labels))} labels"

    mel_params = {"sr": args.sr, "verbose": int(args.verbose)}
    if args.duration is not None:
        mel_params["duration"] = args.duration
    mel = MelSpectrogramTransformer()
    mel.set_params(**{k: v for k, v in mel_params.items() if k in mel.get_params()})
    embed_params = {
        "max_epochs": args.epochs,
        "embedding_dim": args.embedding_dim,
        "random_state": args.random_state,
        "verbose": int(args.verbose),
    }
    if args.patch_frames is not None:
        embed_params["patch_frames"] = args.patch_frames
    model = Pipeline(
        [
            ("mel", mel),
            ("embed", ConvEmbedder(**embed_params)),
            (
                "index",
                NearestTracks(
                    n_neighbors=min(args.n_neighbors, len(files) - 1) or 1,
                    random_state=args.random_state,
                ),
            ),
        ]
    )
    if args.verbose:
        print(f"training on {what}", file=sys.stderr)
    X = [str(f) for f in files]
    model.fit(X, y, index__track_ids=ids)
    save_model(model, args.model)
    print(f"trained on {what}; saved the model to {args.model}")
    return 0


def _skip_or_fail(args, track_id, exc, skipped):
    """An unreadable file: fatal, or with ``--skip-errors`` reported and counted."""
    if not args.skip_errors:
        raise CommandError(f"{exc} (pass --skip-errors to skip unreadable files)") from exc
    _warn(args, f"skipping {track_id}: {exc}")
    skipped.append(track_id)


def _embed_batch(embedder, paths, ids, args, skipped):
    """Embed a batch of files: ``(vectors or None, ids of the embedded files)``.

    When a file of the batch cannot be read, the files are embedded one at a time so
    that only the unreadable ones are skipped (or the first one is fatal).
    """
    import numpy as np

    from .io import AudioLoadError

    try:
        return embedder.transform([str(p) for p in paths]), list(ids)
    except AudioLoadError as exc:
        if len(paths) == 1:
            _skip_or_fail(args, ids[0], exc, skipped)
            return None, []
    parts = [_embed_batch(embedder, [p], [t], args, skipped) for p, t in zip(paths, ids)]
    vectors = [v for v, _ in parts if v is not None]
    kept = [t for _, k in parts for t in k]
    return (np.vstack(vectors) if vectors else None), kept


def _cmd_index(args):
    import numpy as np
    from sklearn.pipeline import Pipeline

    from .persistence import load_model
    from .store import SimilarityStore

    _check_output(args.store, "store")
    model = _load(args.model, load_model)
    if not isinstance(model, Pipeline) or len(model) < 2:
        raise CommandError(
            f"{args.model!r} holds a {type(model).__name__}, not a Pipeline of an "
            "embedding and an index (as saved by `fit`)"
        )
    embedder = model[:-1]
    files, ids, _ = _collection(args.music_dir, labeled=False)
    skipped, all_vectors, all_ids = [], [], []
    starts = range(0, len(files), args.batch_size)
    for start in _progress(starts, args.verbose, desc="embedding", unit="batch"):
        batch = slice(start, start + args.batch_size)
        vectors, kept = _embed_batch(embedder, files[batch], ids[batch], args, skipped)
        if vectors is not None:
            all_vectors.append(vectors)
            all_ids.extend(kept)
    if not all_ids:
        raise CommandError(f"none of the {len(files)} audio files could be read")
    SimilarityStore.build(
        args.store,
        np.vstack(all_vectors),
        all_ids,
        n_neighbors=args.k,
        verbose=args.verbose,
    )
    msg = f"indexed {len(all_ids)} tracks into {args.store}"
    if skipped:
        msg += f"; skipped {len(skipped)} unreadable file(s)"
    print(msg)
    return 0


def _load(path, load_model):
    try:
        return load_model(path)
    except FileNotFoundError:
        raise CommandError(
            f"no model at {str(path)!r}; train one with `{PROG} fit MUSIC_DIR --model {path}`"
        ) from None


def _cmd_similar(args):
    with _open_store(args.store) as store:
        key = _track_key(store, args.track)
        _print_pairs(store.similar(key, k=args.k))
    return 0


def _cmd_recommend(args):
    with _open_store(args.store) as store:
        history = [_track_key(store, t) for t in args.tracks]
        _print_pairs(store.recommend(history, k=args.k, exhaustive=args.exhaustive))
    return 0


def _cmd_demo(args):
    from ._demo import run_demo

    options = {
        name: getattr(args, name)
        for name in ("n_tracks", "duration", "max_epochs")
        if getattr(args, name) is not None
    }
    status = run_demo(verbose=int(args.verbose), **options)
    return status if isinstance(status, int) else 0


# --------------------------------------------------------------------------- #
# parser
# --------------------------------------------------------------------------- #
def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _build_parser():
    # -v and --debug are accepted before and after the subcommand: the top parser
    # and every subcommand take them from `common`, whose SUPPRESS default keeps a
    # subcommand from resetting what the top level set (main fills in False)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show progress bars and training progress",
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
        choices=["track"],
        default="track",
        help="stand-in task with --unlabeled: 'track' = tell apart "
        "excerpts of different tracks (default)",
    )
    p.add_argument("--epochs", type=_positive_int, default=20, help="training epochs (default 20)")
    p.add_argument(
        "--embedding-dim",
        type=_positive_int,
        default=64,
        help="size of the embeddings (default 64)",
    )
    p.add_argument(
        "--patch-frames",
        type=_positive_int,
        default=None,
        help="spectrogram frames per training patch (default: the embedder's)",
    )
    p.add_argument(
        "--sr",
        type=_positive_int,
        default=16000,
        help="sampling rate the audio is resampled to (default 16000)",
    )
    p.add_argument(
        "--duration", type=float, default=None, help="seconds of each track to use (default: all)"
    )
    p.add_argument(
        "-k",
        "--n-neighbors",
        type=_positive_int,
        default=10,
        help="neighbours of the model's index (default 10)",
    )
    p.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser(
        "index",
        parents=[common],
        help="embed a music folder into a similarity store",
        description="Embed every audio file under MUSIC_DIR with a fitted model and "
        "write each track's vector and similar tracks to a store. Track ids are the "
        "paths relative to MUSIC_DIR. An unreadable file stops the run unless "
        "--skip-errors is given.",
    )
    p.add_argument("music_dir", metavar="MUSIC_DIR")
    p.add_argument("--model", required=True, help="model file from `fit` (.skops)")
    p.add_argument("--store", required=True, help="store file to write (.db)")
    p.add_argument(
        "-k", type=_positive_int, default=10, help="similar tracks stored per track (default 10)"
    )
    p.add_argument(
        "--skip-errors",
        action="store_true",
        help="skip unreadable files (reported, counted) instead of failing",
    )
    p.add_argument(
        "--batch-size", type=_positive_int, default=16, help="files embedded at a time (default 16)"
    )
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser(
        "similar",
        parents=[common],
        help="print the tracks most similar to a track",
        description="Print the tracks most similar to TRACK, one 'score<TAB>track' "
        "line each, most similar first.",
    )
    p.add_argument("track", metavar="TRACK", help="a track id (path relative to MUSIC_DIR)")
    p.add_argument("--store", required=True, help="store file from `index`")
    p.add_argument("-k", type=_positive_int, default=10, help="number of tracks (default 10)")
    p.set_defaults(func=_cmd_similar)

    p = sub.add_parser(
        "recommend",
        parents=[common],
        help="recommend tracks for a listening history",
        description="Print tracks close to the mean of the given tracks' vectors, "
        "one 'score<TAB>track' line each; the given tracks are left out.",
    )
    p.add_argument("tracks", metavar="TRACK", nargs="+", help="track ids")
    p.add_argument("--store", required=True, help="store file from `index`")
    p.add_argument("-k", type=_positive_int, default=10, help="number of tracks (default 10)")
    p.add_argument(
        "--exhaustive",
        action="store_true",
        help="score every stored track instead of the stored neighbours of the history",
    )
    p.set_defaults(func=_cmd_recommend)

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
        type=_positive_int,
        default=None,
        help="synthetic tracks (default: the demo's)",
    )
    p.add_argument(
        "--duration", type=float, default=None, help="seconds per track (default: the demo's)"
    )
    p.add_argument(
        "--epochs",
        dest="max_epochs",
        type=_positive_int,
        default=None,
        help="training epochs (default: the demo's)",
    )
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv=None):
    """Run the ``sklearn-music`` command line.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    status : int
        The exit status: 0 success, 1 runtime error, 2 usage error, 130
        interrupted.

    Examples
    --------
    >>> from sklearn_music.cli import main
    >>> main(["similar", "x.ogg", "--store", "no-such.db"])
    1
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 2
    for name in ("verbose", "debug"):
        if not hasattr(args, name):
            setattr(args, name, False)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        if isinstance(exc, KeyError) and exc.args:
            message = str(exc.args[0])
        else:
            message = str(exc) or type(exc).__name__
        message = " ".join(message.split())  # one line
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
