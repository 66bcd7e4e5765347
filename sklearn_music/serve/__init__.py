"""Serve a :class:`~sklearn_music.store.SimilarityStore` over HTTP.

``sklearn-music serve --store tracks.db [--model model.skops]`` runs a
Starlette application on uvicorn (the optional extra ``serve``:
``pip install sklearn_music[serve]``):

========================================  ==========================================
``GET /tracks/{id}/similar?k=10``          ``[{"track_id", "score"}]``, best first
``GET /tracks/{id}/vector``                ``{"track_id", "vector"}``
``POST /recommend``                        body ``{"history": [ids], "k": 10}``
``POST /similar?k=10``                     body: an audio file (with ``--model``)
``GET /health``                            what is served, its version
``GET /metrics``                           Prometheus text format
``GET /openapi.json``                      the OpenAPI schema
========================================  ==========================================

Ids are URL-encoded path segments (any characters, ``/`` as ``%2F``); in a
store of ``int`` ids they are decimal integers. Every error is JSON
``{"error": {"status": 404, "code": "unknown_track", "message": "..."}}``.
Each response names the store version it was read from in the
``X-Store-Version`` header: when a build or an ``add`` replaces the store file,
the service switches to the new file within ``check_interval`` seconds, without
a restart and without a failed or mixed request.

The web framework is imported only by this package, never by ``import
sklearn_music``. See the user guide page "Serving similar tracks over HTTP".
"""

from ._cli import add_serve_parser, run_serve

__all__ = ["add_serve_parser", "create_app", "run_serve"]


def create_app(
    store,
    *,
    model=None,
    max_k=100,
    max_history=100,
    max_upload_bytes=20 << 20,
    max_audio_s=600.0,
    embed_timeout=30.0,
    embed_concurrency=1,
    check_interval=0.5,
):
    """Make the ASGI application that serves a similarity store.

    The application opens the store in the thread that calls this function,
    which must be the thread that runs the server's event loop (as uvicorn
    does); lookups run on that loop, the embedding of uploads on a pool of
    ``embed_concurrency`` threads.

    Parameters
    ----------
    store : str or path-like
        The store file (made by :meth:`~sklearn_music.store.SimilarityStore.build`).
    model : object, default=None
        A fitted model that turns audio into the store's vectors, e.g. the
        pipeline saved by ``sklearn-music fit`` (its last step, the index, is
        not used). Without one, ``POST /similar`` answers 501.
    max_k : int, default=100
        Largest ``k`` accepted.
    max_history : int, default=100
        Most ids in a ``POST /recommend`` history.
    max_upload_bytes : int, default=20971520
        Largest audio upload (20 MiB); a larger one is answered 413.
    max_audio_s : float, default=600.0
        Seconds of an upload that are decoded (the rest is ignored).
    embed_timeout : float, default=30.0
        Seconds an upload may wait for an embedding slot, and then to be
        decoded and embedded, before a 503.
    embed_concurrency : int, default=1
        Uploads embedded at once; more wait (up to ``embed_timeout``).
    check_interval : float, default=0.5
        Seconds between looks at the store file for a new version.

    Returns
    -------
    app : starlette.applications.Starlette
        The application; run it with ``uvicorn.run(app)``.

    Examples
    --------
    >>> from sklearn_music.serve import create_app
    >>> from sklearn_music.store import SimilarityStore
    >>> path = getfixture("tmp_path") / "tracks.db"
    >>> SimilarityStore.build(path, [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], ["a", "b", "c"])
    >>> app = create_app(path)
    >>> sorted(r.path for r in app.routes)[:2]
    ['/health', '/metrics']
    """
    from ._app import build_app

    for name, value in [("max_k", max_k), ("max_history", max_history)]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer")
    if not (isinstance(embed_concurrency, int) and embed_concurrency >= 1):
        raise ValueError(f"embed_concurrency={embed_concurrency!r} must be a positive integer")
    for name, value in [
        ("max_upload_bytes", max_upload_bytes),
        ("max_audio_s", max_audio_s),
        ("embed_timeout", embed_timeout),
    ]:
        if not value > 0:
            raise ValueError(f"{name}={value!r} must be positive")
    if not check_interval >= 0:
        raise ValueError(f"check_interval={check_interval!r} must be >= 0")
    return build_app(
        store,
        model=model,
        max_k=max_k,
        max_history=max_history,
        max_upload_bytes=int(max_upload_bytes),
        max_audio_s=float(max_audio_s),
        embed_timeout=float(embed_timeout),
        embed_concurrency=embed_concurrency,
        check_interval=float(check_interval),
    )
