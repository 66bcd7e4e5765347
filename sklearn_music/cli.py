"""The ``sklearn-music`` command line (also ``python -m sklearn_music``).

Subcommands::

    sklearn-music fit MUSIC_DIR --model model.skops [--unlabeled] [--epochs N] [--no-eval]
    sklearn-music index MUSIC_DIR [--model model.skops] --store tracks.db [--skip-errors]
    sklearn-music embed FILES... [--model model.skops] --out vectors.npy|vectors.parquet
    sklearn-music similar TRACK_OR_FILE --store tracks.db [--model model.skops] -k 10
    sklearn-music recommend TRACK_OR_FILE [...] --store tracks.db [--aggregate clusters]
    sklearn-music export --store tracks.db --out vectors.npy|vectors.parquet|vectors.csv
    sklearn-music serve --store tracks.db [--model model.skops] [--port 8000] [--workers N]
    sklearn-music report --store tracks.db --music-dir DIR --out report/ [--model m.skops]
    sklearn-music demo

Exit status: 0 on success, 1 on a runtime error (a one-line message on
stderr; ``--debug`` shows the traceback instead), 2 on a usage error, 130 when
interrupted.

``fit`` trains ``MelSpectrogramTransformer -> ConvEmbedder -> NearestTracks`` on the
folder-per-label layout ``MUSIC_DIR/<label>/<track>`` (or, with ``--unlabeled``,
on the stand-in task ``--task track``: tell apart excerpts of different
tracks) and saves the fitted pipeline with
:func:`sklearn_music.persistence.save_model`. ``index`` embeds any folder of
audio with a saved model (without ``--model``: the pretrained ``soundtracks-v1``,
no ``fit`` needed) and writes a
:class:`~sklearn_music.store.SimilarityStore` whose track ids are the paths
relative to ``MUSIC_DIR``; ``similar`` and ``recommend`` query it, by stored id
or by audio file (see :mod:`sklearn_music._cli_query` for how an argument is
read), in ``--format text``, ``json`` or ``csv`` (:mod:`sklearn_music._cli_output`);
``export`` writes every id and vector (:mod:`sklearn_music._cli_export`);
``embed`` writes the vectors of audio files to one ``.npy`` or ``.parquet`` file
(:mod:`sklearn_music._cli_embed`), or to a folder of shards on Dask
(:mod:`sklearn_music.batch`);
``serve`` serves the store over HTTP (:mod:`sklearn_music.serve`, the ``serve`` extra).

Progress goes to stderr, one named bar per stage, when stderr is a terminal
(``--progress`` / ``--no-progress`` force it); see
:mod:`sklearn_music._cli_progress`.
"""

import os
import sys
from pathlib import Path

__all__ = ["main"]

from ._cli_parser import PROG


class CommandError(Exception):
    """A runtime error reported to the user as one line, exit status 1."""


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _collection(music_dir, *, labeled):
    """(files, ids, labels) of a music folder; ids are paths relative to it."""
    from ._cli_query import escape_id
    from .datasets import load_audio_folder

    music_dir = Path(music_dir)
    try:
        found = load_audio_folder(music_dir, labeled=labeled)
    except ValueError as exc:  # the library's advice, in the command line's words
        raise CommandError(str(exc).replace("pass labeled=False", "pass --unlabeled")) from None
    files = [Path(str(f)) for f in found.filenames]
    ids = [escape_id(f.relative_to(music_dir).as_posix()) for f in files]
    labels = None
    if labeled:
        labels = [str(found.target_names[t]) for t in found.target]
    return files, ids, labels


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


def _progress(args):
    from ._cli_progress import Progress

    return Progress(args.progress, PROG)


def _warn(args, message):
    """One line on stderr, printed around a progress bar when there is one."""
    _progress(args).write(f"{PROG}: {message}")


def _open_store(path):
    from .store import SimilarityStore

    try:
        return SimilarityStore(path)
    except FileNotFoundError:
        raise CommandError(
            f"no store at {str(path)!r}; make one with `{PROG} index MUSIC_DIR "
            f"--model MODEL --store {path}`"
        ) from None


def _check_device(device):
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise CommandError(f"--device {device}: torch finds no CUDA device on this machine")


def _to_device(model, device):
    """Move every fitted ConvEmbedder of ``model`` to ``device`` (through its weights)."""
    from ._embedder import ConvEmbedder

    for _, est in getattr(model, "steps", [(None, model)]):
        est = getattr(est, "estimator", est)  # a pretrained FrozenEstimator's embedder
        if isinstance(est, ConvEmbedder) and est.device != device:
            state = est.__getstate__()
            state["device"] = device
            est.__setstate__(state)
    return model


def _print_results(args, pairs, **query):
    from ._cli_output import write_results

    write_results(pairs, fmt=args.format, file=sys.stdout, **query)


# --------------------------------------------------------------------------- #
# subcommands
# --------------------------------------------------------------------------- #
def _cmd_fit(args):
    import numpy as np
    from sklearn.pipeline import Pipeline

    from . import MelSpectrogramTransformer, NearestTracks
    from . import _cli_fit as fitting
    from ._query import quiet
    from .persistence import save_model

    _check_output(args.model, "model")
    _check_device(args.device)
    progress = _progress(args)
    files, ids, labels = _collection(args.music_dir, labeled=not args.unlabeled)
    if args.unlabeled:
        # stand-in task "track": every track is its own class, so the network
        # learns to tell apart excerpts of different tracks; "contrastive": no
        # labels at all (ConvEmbedder.fit(X)), two patches of a track against the
        # other tracks of the batch, no output per track
        y = np.arange(len(files)) if args.task == "track" else None
        what = f"{len(files)} tracks, unlabeled (task {args.task!r})"
    else:
        if len(set(labels)) < 2:
            raise CommandError(
                f"found a single label folder {labels[0]!r} in {str(args.music_dir)!r}; "
                "training needs at least 2 (or pass --unlabeled)"
            )
        y = np.asarray(labels)
        what = f"{len(files)} tracks, {len(set(labels))} labels"
    progress.stage(f"training on {what}")

    mel = MelSpectrogramTransformer(sr=args.sr, duration=args.duration)
    X = [str(f) for f in files]
    specs = fitting.spectrograms(X, mel.fit(X), progress)
    params = {
        "max_epochs": args.epochs,
        "embedding_dim": args.embedding_dim,
        "init": _init(args),
        "random_state": args.random_state,
        "device": args.device,
        "verbose": int(args.verbose),
    }
    if args.patch_frames is not None:
        params["patch_frames"] = args.patch_frames
    if not args.no_eval:
        _held_out(args, X, specs, y, params, progress)

    embed = fitting.train_embedder(specs, y, params, progress, "training on all tracks")
    progress.stage("indexing the training tracks")
    index = NearestTracks(
        n_neighbors=min(args.n_neighbors, len(files) - 1) or 1, random_state=args.random_state
    ).fit(embed.transform(specs), y, track_ids=ids)
    model = Pipeline([("mel", mel), ("embed", embed), ("index", index)])
    # a saved model is quiet and on the CPU, whatever this run's -v and --device
    save_model(_to_device(quiet(model), "cpu"), args.model)
    print(f"trained on {what}; saved the model to {args.model}")
    return 0


def _init(args):
    """ConvEmbedder's ``init`` for ``fit``: ``--init``, with ``auto`` kept to the
    pretrained model's mel settings (its 128 bands computed at another rate would
    fit its trunk but not its features)."""
    from ._pretrained_weights import DEFAULT_MODEL, read_payload

    if args.init == "none":
        return None
    if args.init == "auto":
        sr = int(read_payload(DEFAULT_MODEL)["mel_params"]["sr"])
        return "auto" if args.sr == sr else None
    return args.init


def _held_out(args, X, specs, y, params, progress):
    """Print the held-out retrieval scores of ``fit`` (or why there are none)."""
    from . import _cli_fit as fitting

    if args.unlabeled:
        print("held-out score skipped: it counts same-label neighbours and --unlabeled has none")
        return
    mfcc = fitting.mfcc_statistics(X, args.sr, args.duration, progress)
    result, reason = fitting.held_out_scores(
        specs,
        mfcc,
        y,
        params=params,
        k=args.n_neighbors,
        random_state=args.random_state,
        progress=progress,
    )
    print(fitting.format_scores(result) if result else f"held-out score skipped: {reason}")
    sys.stdout.flush()


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

    from .store import SimilarityStore

    _check_output(args.store, "store")
    _check_device(args.device)
    progress = _progress(args)
    embedder = _embedding_model(args)
    files, ids, _ = _collection(args.music_dir, labeled=False)
    skipped, all_vectors, all_ids = [], [], []
    with progress.bar("embedding", len(files), "track") as bar:
        for start in range(0, len(files), args.batch_size):
            batch = slice(start, start + args.batch_size)
            vectors, kept = _embed_batch(embedder, files[batch], ids[batch], args, skipped)
            if vectors is not None:
                all_vectors.append(vectors)
                all_ids.extend(kept)
            bar.update(len(files[batch]))
    if not all_ids:
        raise CommandError(f"none of the {len(files)} audio files could be read")
    # a named stage without a bar: the store's verbose would let pynndescent print
    # its log to stdout, where the command's result goes
    progress.stage(f"finding the {args.k} most similar tracks of each track, writing the store")
    SimilarityStore.build(args.store, np.vstack(all_vectors), all_ids, n_neighbors=args.k)
    msg = f"indexed {len(all_ids)} tracks into {args.store}"
    if skipped:
        msg += f"; skipped {len(skipped)} unreadable file(s)"
    print(msg)
    return 0


def _load_pipeline(args):
    """The fitted model of ``--model``: quiet, on ``--device``, checked to be a Pipeline."""
    from sklearn.pipeline import Pipeline

    from ._query import quiet
    from .persistence import load_model

    path = args.model
    from .pretrained import available_models, load

    if path in available_models() and not Path(path).exists():  # a pretrained model
        return _to_device(load(path), getattr(args, "device", "cpu"))
    try:
        model = load_model(path)
    except FileNotFoundError:
        raise CommandError(
            f"no model at {str(path)!r}; train one with `{PROG} fit MUSIC_DIR --model {path}`"
        ) from None
    if not isinstance(model, Pipeline) or len(model) < 2:
        raise CommandError(
            f"{str(path)!r} holds a {type(model).__name__}, not a Pipeline of an "
            "embedding and an index (as saved by `fit`)"
        )
    return _to_device(quiet(model), getattr(args, "device", "cpu"))


def _embedding_model(args):
    """Audio in, vectors out: ``--model`` without its index, or the pretrained model."""
    from ._query import embedding_steps

    if args.model is None:
        from .pretrained import load

        return _to_device(load("soundtracks-v1"), getattr(args, "device", "cpu"))
    return embedding_steps(_load_pipeline(args))


def _cmd_embed(args):
    """``embed``: one vectors file in-process (.npy/.parquet), else shards on Dask."""
    from ._cli_embed import embed_files, gather, is_file_output, write_vectors

    if not is_file_output(args.out):
        from .batch._cli import cmd_embed

        return cmd_embed(args)
    _check_output(args.out, "vectors")
    progress = _progress(args)
    try:
        paths, ids = gather(args.listing, column=args.column, id_column=args.id_column)
    except (ValueError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from None
    model = _embedding_model(args)
    with progress.bar("embedding", len(paths), "track") as bar:
        try:
            vectors, kept, skipped = embed_files(
                model,
                paths,
                ids,
                batch_size=args.batch_size,
                bar=bar,
                skip_errors=args.skip_errors,
                warn=lambda message: _warn(args, message),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    write_vectors(args.out, vectors, kept)
    msg = f"embedded {len(kept)} tracks ({vectors.shape[1]} dimensions) into {args.out}"
    if skipped:
        msg += f"; skipped {len(skipped)} unreadable file(s)"
    print(msg)
    return 0


def _model_loader(args):
    """A function that loads ``--model`` once, for the queries that are audio files."""
    loaded = []

    def load():
        if args.model is None:
            raise CommandError(
                "an audio file as the query needs the model that indexed the store: "
                "pass --model MODEL (--model soundtracks-v1 for a store indexed "
                "without --model)"
            )
        if not loaded:
            loaded.append(_load_pipeline(args))
        return loaded[0]

    return load


def _answer(args, run):
    """Run a query; its errors become one-line command errors."""
    from ._cli_query import QueryError

    try:
        return run()
    except QueryError as exc:
        raise CommandError(str(exc)) from None


def _cmd_similar(args):
    from . import _cli_query as q

    with _open_store(args.store) as store:
        kind, query = _answer(args, lambda: q.resolve(store, args.track))
        pairs = _answer(
            args,
            lambda: q.similar(
                store, kind, query, args.k, _model_loader(args), lambda m: _warn(args, m)
            ),
        )
        _print_results(args, pairs, query=query)
    return 0


def _cmd_recommend(args):
    from . import _cli_query as q

    with _open_store(args.store) as store:
        queries = [_answer(args, lambda t=t: q.resolve(store, t)) for t in args.tracks]
        pairs = _answer(
            args,
            lambda: q.recommend(
                store,
                queries,
                k=args.k,
                exhaustive=args.exhaustive,
                aggregate=args.aggregate,
                model_loader=_model_loader(args),
                warn=lambda m: _warn(args, m),
            ),
        )
        _print_results(args, pairs, history=[t for _, t in queries])
    return 0


def _cmd_export(args):
    from ._cli_export import ExportError, export

    progress = _progress(args)
    with _open_store(args.store) as store:
        try:
            with progress.bar("exporting", len(store), "track") as bar:
                n = export(store, args.out, batch_size=args.batch_size, bar=bar)
        except ExportError as exc:
            raise CommandError(str(exc)) from None
    print(f"exported {n} tracks ({store.dim} dimensions) to {args.out}")
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
    from ._cli_parser import build_parser

    commands = {
        "fit": _cmd_fit,
        "index": _cmd_index,
        "similar": _cmd_similar,
        "recommend": _cmd_recommend,
        "export": _cmd_export,
        "embed": _cmd_embed,
        "demo": _cmd_demo,
    }
    parser = build_parser(commands)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 2
    for name, default in (("verbose", False), ("debug", False), ("progress", None)):
        if not hasattr(args, name):
            setattr(args, name, default)
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
