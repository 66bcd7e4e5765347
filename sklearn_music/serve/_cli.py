"""``sklearn-music serve``: the subcommand's parser and runner."""

import json
import os

_ENV = "SKLEARN_MUSIC_SERVE_CONFIG"


def add_serve_parser(subparsers, *, parents=()):
    """Add the ``serve`` subcommand to the ``sklearn-music`` command line.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What :meth:`argparse.ArgumentParser.add_subparsers` returned.
    parents : sequence of argparse.ArgumentParser, default=()
        Parsers whose options the subcommand takes too (as ``--debug``).

    Returns
    -------
    parser : argparse.ArgumentParser
        The subcommand's parser (its ``func`` default is :func:`run_serve`).

    Examples
    --------
    >>> import argparse
    >>> from sklearn_music.serve import add_serve_parser
    >>> parser = argparse.ArgumentParser(prog="sklearn-music")
    >>> _ = add_serve_parser(parser.add_subparsers())
    >>> parser.parse_args(["serve", "--store", "tracks.db", "--workers", "2"]).workers
    2
    """
    p = subparsers.add_parser(
        "serve",
        parents=list(parents),
        help="serve a similarity store over HTTP",
        description=(
            "Serve a similarity store over HTTP (Starlette on uvicorn): similar tracks, "
            "vectors, recommendations, similar tracks to uploaded audio (with --model), "
            "/health, /metrics, /openapi.json. A store file replaced by a rebuild or an "
            "add is picked up without a restart. Needs the 'serve' extra."
        ),
    )
    p.add_argument("--store", required=True, help="the store file (made by `index`)")
    p.add_argument("--model", help="a saved model, to embed uploads for POST /similar")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    p.add_argument("--max-k", type=int, default=100, help="largest k (default: %(default)s)")
    p.add_argument(
        "--max-history", type=int, default=100, help="most ids in a history (default: %(default)s)"
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=20.0, help="largest upload (default: %(default)s)"
    )
    p.add_argument(
        "--max-audio-seconds",
        type=float,
        default=600.0,
        help="seconds of an upload decoded (default: %(default)s)",
    )
    p.add_argument(
        "--embed-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for and run an embedding (default: %(default)s)",
    )
    p.add_argument(
        "--embed-concurrency",
        type=int,
        default=1,
        help="uploads embedded at once per worker (default: %(default)s)",
    )
    p.add_argument(
        "--check-interval-ms",
        type=float,
        default=500.0,
        help="how often to look for a new store file (default: %(default)s)",
    )
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default: warning)")
    p.set_defaults(func=run_serve)
    return p


def _settings(args):
    return {
        "store": os.path.abspath(args.store),
        "model": os.path.abspath(args.model) if args.model else None,
        "max_k": args.max_k,
        "max_history": args.max_history,
        "max_upload_bytes": int(args.max_upload_mb * 2**20),
        "max_audio_s": args.max_audio_seconds,
        "embed_timeout": args.embed_timeout,
        "embed_concurrency": args.embed_concurrency,
        "check_interval": args.check_interval_ms / 1000.0,
    }


def _app_from_settings(settings):
    from . import create_app

    settings = dict(settings)
    model_path = settings.pop("model")
    model = None
    if model_path is not None:
        from ..persistence import load_model

        model = load_model(model_path)
    return create_app(settings.pop("store"), model=model, **settings)


def _app_from_env():
    """The application factory of each worker process (``--workers N``)."""
    return _app_from_settings(json.loads(os.environ[_ENV]))


def run_serve(args):
    """Run the server of ``sklearn-music serve`` until interrupted.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of :func:`add_serve_parser`.

    Returns
    -------
    status : int
        0 once the server has stopped.

    Raises
    ------
    FileNotFoundError
        If the store or the model file does not exist.
    ValueError
        If the store is not a similarity store or an option is out of range.

    Examples
    --------
    >>> import argparse
    >>> from sklearn_music.serve import add_serve_parser, run_serve
    >>> parser = argparse.ArgumentParser()
    >>> _ = add_serve_parser(parser.add_subparsers())
    >>> run_serve(parser.parse_args(["serve", "--store", "no-such.db"]))
    Traceback (most recent call last):
    ...
    FileNotFoundError: no similarity store at '...no-such.db'
    """
    import uvicorn

    if args.workers < 1:
        raise ValueError(f"--workers {args.workers} must be at least 1")
    if not 0 < args.port < 65536 and args.port != 0:
        raise ValueError(f"--port {args.port} must be from 0 to 65535")
    settings = _settings(args)
    app = _app_from_settings(settings)  # fails here, once, on a bad store or model
    options = {
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
        "access_log": args.access_log,
        "timeout_graceful_shutdown": 5,
    }
    if args.workers == 1:
        uvicorn.run(app, **options)
    else:
        os.environ[_ENV] = json.dumps(settings)
        uvicorn.run(
            "sklearn_music.serve._cli:_app_from_env", factory=True, workers=args.workers, **options
        )
    return 0
