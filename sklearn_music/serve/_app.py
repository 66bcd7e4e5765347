"""The Starlette application: routes, limits, errors, metrics."""

import asyncio
import concurrent.futures
import contextlib
import io
import json
import re
import time

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from ._state import APIError, Metrics, StoreHolder, ThreadStores, logger

JSON = "application/json"
_INT_ID = re.compile(r"-?(0|[1-9][0-9]*)\Z")


class _AnyConvertor(Convertor):
    """A path parameter of any characters, slashes and newlines included."""

    regex = r"[\s\S]+"

    def convert(self, value):
        return value

    def to_string(self, value):
        return str(value)


register_url_convertor("trackid", _AnyConvertor())


def _json(data, version, status=200):
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status, {"x-store-version": version}, media_type=JSON)


def _error(status, code, message, headers=None):
    body = {"error": {"status": status, "code": code, "message": message}}
    return JSONResponse(body, status, headers)


def _pairs(pairs):
    return [{"track_id": t, "score": s} for t, s in pairs]


# --------------------------------------------------------------------------- #
# parsing requests
# --------------------------------------------------------------------------- #
def _track_id(text, store):
    """The typed id of a path segment; an id of the wrong kind is unknown (404)."""
    if store.id_type is str:
        return text
    if _INT_ID.match(text):
        return int(text)
    raise APIError(
        404, "unknown_track", f"unknown track id {text!r}: this store's ids are integers"
    )


def _k(request, max_k):
    raw = request.query_params.get("k", "10")
    try:
        k = int(raw)
    except ValueError:
        raise APIError(422, "invalid_parameter", f"k={raw!r} is not an integer") from None
    if not 1 <= k <= max_k:
        raise APIError(422, "invalid_parameter", f"k={k} must be between 1 and {max_k}")
    return k


async def _body(request, limit):
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    too_large = APIError(
        413, "payload_too_large", f"the request body is larger than the limit of {limit} bytes"
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _history(body, store, max_history, max_k):
    """(history, k) from a POST /recommend body, or a 422 naming the bad field."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise APIError(422, "invalid_body", f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("history"), list):
        raise APIError(
            422, "invalid_body", 'the body must be a JSON object {"history": [track ids], "k": 10}'
        )
    history, k = data["history"], data.get("k", 10)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= max_k:
        raise APIError(422, "invalid_parameter", f"k={k!r} must be an integer from 1 to {max_k}")
    if not 1 <= len(history) <= max_history:
        raise APIError(
            422,
            "invalid_parameter",
            f"history has {len(history)} ids; give from 1 to {max_history}",
        )
    kind = store.id_type
    for i, tid in enumerate(history):
        if isinstance(tid, bool) or not isinstance(tid, kind):
            raise APIError(
                422,
                "invalid_parameter",
                f"history[{i}]={tid!r} is not a {kind.__name__}: this store's ids are "
                f"{kind.__name__}",
            )
    return history, k


# --------------------------------------------------------------------------- #
# metrics middleware (pure ASGI: no per-request task or body copy)
# --------------------------------------------------------------------------- #
class _MetricsMiddleware:
    def __init__(self, app, metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = [500]

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None)
            route = _ROUTE_NAMES.get(route, route) if route else "unmatched"
            self.metrics.observe(route, scope["method"], status[0], time.perf_counter() - t0)


_ROUTE_NAMES = {}  # route path with convertors -> name in the metrics and schema
_SIMILAR_ROUTE = "/tracks/{track_id}/similar"
_K_QUERY = re.compile(rb"k=([0-9]{1,6})\Z")


class _FastSimilar:
    """The hot path, ``GET /tracks/{id}/similar``, answered without the router.

    A successful lookup costs about half the CPU time of going through
    Starlette's routing, request and response objects; anything else (a bad
    ``k``, an unknown id, another route) goes on to the application, which
    answers it (and its errors) in full.
    """

    def __init__(self, app, service):
        self.app = app
        self.service = service
        self.max_k = service.settings["max_k"]

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET":
            path = scope["path"]
            if path.startswith("/tracks/") and path.endswith("/similar") and len(path) > 16:
                t0 = time.perf_counter()
                body, version = self._lookup(path[8:-8], scope["query_string"])
                if body is not None:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [
                                (b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"x-store-version", version),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    elapsed = time.perf_counter() - t0
                    self.service.metrics.observe(_SIMILAR_ROUTE, "GET", 200, elapsed)
                    return
        await self.app(scope, receive, send)

    def _lookup(self, text, query):
        """(body, version) of a valid lookup, else (None, None); no await in here."""
        if not query:
            k = 10
        else:
            m = _K_QUERY.match(query)
            if m is None:
                return None, None
            k = int(m.group(1))
        if not 1 <= k <= self.max_k:
            return None, None
        holder = self.service.stores.get()
        store = holder.store
        if store.id_type is int:
            if not _INT_ID.match(text):
                return None, None
            text = int(text)
        try:
            pairs = store.similar(text, k=k)
        except KeyError:
            return None, None
        data = [{"track_id": t, "score": s} for t, s in pairs]
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        return body, holder.version.encode()


# --------------------------------------------------------------------------- #
# the application
# --------------------------------------------------------------------------- #
class _Service:
    """The endpoints, bound to one store path, model and set of limits."""

    def __init__(self, store, *, model, settings):
        self.settings = settings
        StoreHolder(store).close()  # a missing or bad store fails here, in the caller
        # one connection per thread (sqlite3 objects are per thread): the event
        # loop's, looking for a new file at most every check_interval, and the
        # pool threads', which look on every request
        self.stores = ThreadStores(store, check_interval=settings["check_interval"])
        self.store_path = store
        self.model = model
        self.metrics = Metrics()
        self.embedder, self.sr = _embedding_part(model) if model is not None else (None, None)
        n = settings["embed_concurrency"]
        self.pool = concurrent.futures.ThreadPoolExecutor(n, thread_name_prefix="embed")
        self.recommend_pool = concurrent.futures.ThreadPoolExecutor(
            2, thread_name_prefix="recommend"
        )
        self.thread_stores = ThreadStores(store, check_interval=0.0)
        self.embed_slots = asyncio.Semaphore(n)  # binds to the loop on first use
        self.embed_running = 0

    async def similar(self, request):
        """Tracks most similar to a stored track, best first.

        ---
        summary: Similar tracks
        parameters:
          - {name: track_id, in: path, required: true, schema: {type: string},
             description: "A stored track id, URL-encoded (any characters)."}
          - {name: k, in: query, schema: {type: integer, minimum: 1, default: 10}}
        responses:
          200: {description: "[{track_id, score}], best first"}
          404: {description: unknown track id}
          422: {description: bad k}
        """
        k = _k(request, self.settings["max_k"])
        holder = self.stores.get()  # no await from here on: one version per request
        store = holder.store
        tid = _track_id(request.path_params["track_id"], store)
        try:
            pairs = store.similar(tid, k=k)
        except KeyError:
            raise APIError(404, "unknown_track", f"unknown track id {tid!r}") from None
        return _json(_pairs(pairs), holder.version)

    async def vector(self, request):
        """A stored track's vector.

        ---
        summary: Track vector
        parameters:
          - {name: track_id, in: path, required: true, schema: {type: string}}
        responses:
          200: {description: "{track_id, vector}"}
          404: {description: unknown track id}
        """
        holder = self.stores.get()
        store = holder.store
        tid = _track_id(request.path_params["track_id"], store)
        try:
            v = store.vector(tid)
        except KeyError:
            raise APIError(404, "unknown_track", f"unknown track id {tid!r}") from None
        return _json({"track_id": tid, "vector": v.tolist()}, holder.version)

    async def user_recommendations(self, request):
        """A user's precomputed recommendations, best first: one lookup.

        The lists are written into the store by
        :func:`sklearn_music.batch.recommend_all` (``store=True``).

        ---
        summary: Precomputed recommendations of a user
        parameters:
          - {name: user_id, in: path, required: true, schema: {type: string},
             description: "A user id, URL-encoded (any characters)."}
          - {name: k, in: query, schema: {type: integer, minimum: 1, default: 10}}
        responses:
          200: {description: "[{track_id, score}], best first"}
          404: {description: no list stored for this user}
          422: {description: bad k}
        """
        k = _k(request, self.settings["max_k"])
        holder = self.stores.get()  # no await from here on: one version per request
        store = holder.store
        text = request.path_params["user_id"]
        # the store keeps the users' id type; an integer-looking segment may be either
        for uid in [int(text)] if _INT_ID.match(text) else []:
            try:
                return _json(_pairs(store.recommended(uid, k=k)), holder.version)
            except KeyError:
                pass
        try:
            pairs = store.recommended(text, k=k)
        except KeyError:
            raise APIError(
                404, "unknown_user", f"no recommendations stored for user {text!r}"
            ) from None
        return _json(_pairs(pairs), holder.version)

    async def recommend(self, request):
        """Top-k tracks for a listening history (tracks in it are left out).

        ---
        summary: Recommend for a history
        requestBody:
          content:
            application/json:
              schema:
                type: object
                required: [history]
                properties:
                  history: {type: array, items: {oneOf: [{type: string}, {type: integer}]}}
                  k: {type: integer, minimum: 1, default: 10}
        responses:
          200: {description: "[{track_id, score}], best first"}
          404: {description: a history id is not stored}
          413: {description: body too large}
          422: {description: "bad body, history or k"}
        """
        body = await _body(request, self.settings["max_json_bytes"])
        # a long history costs milliseconds: off the event loop, so lookups go on
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.recommend_pool, self._recommend, body)

    def _recommend(self, body):
        holder = self.thread_stores.get()  # this thread's store, at the current version
        store = holder.store
        history, k = _history(body, store, self.settings["max_history"], self.settings["max_k"])
        try:
            pairs = store.recommend(history, k=k)
        except KeyError as exc:
            raise APIError(404, "unknown_track", str(exc.args[0])) from None
        except ValueError as exc:
            raise APIError(422, "invalid_parameter", str(exc)) from None
        return _json(_pairs(pairs), holder.version)

    async def similar_audio(self, request):
        """Tracks most similar to an uploaded audio file (the body), best first.

        ---
        summary: Similar tracks to uploaded audio
        parameters:
          - {name: k, in: query, schema: {type: integer, minimum: 1, default: 10}}
        requestBody:
          content:
            audio/*: {schema: {type: string, format: binary}}
            application/octet-stream: {schema: {type: string, format: binary}}
        responses:
          200: {description: "[{track_id, score}], best first"}
          413: {description: upload too large}
          415: {description: not audio}
          501: {description: the server was started without --model}
          503: {description: "embedding slots busy or decoding too slow"}
        """
        if self.model is None:
            raise APIError(501, "no_model", "this server has no model: start it with --model")
        k = _k(request, self.settings["max_k"])
        ctype = request.headers.get("content-type", "application/octet-stream").split(";")[0]
        ctype = ctype.strip().lower()
        if not (ctype.startswith("audio/") or ctype == "application/octet-stream"):
            raise APIError(
                415,
                "not_audio",
                f"Content-Type {ctype!r} is not audio: send audio/* or application/octet-stream",
            )
        body = await _body(request, self.settings["max_upload_bytes"])
        return await self._embed(body, k)

    async def _embed(self, body, k):
        timeout = self.settings["embed_timeout"]
        try:
            await asyncio.wait_for(self.embed_slots.acquire(), timeout)
        except asyncio.TimeoutError:
            raise APIError(
                503, "busy", "all embedding slots are busy; retry later", {"retry-after": "1"}
            ) from None
        loop = asyncio.get_running_loop()
        future = self.pool.submit(self._embed_and_search, body, k)
        self.embed_running += 1

        def release(_):  # the slot is held until the thread is done, even after a timeout
            self.embed_running -= 1
            self.embed_slots.release()

        future.add_done_callback(lambda f: loop.call_soon_threadsafe(release, f))
        try:
            pairs, version = await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except asyncio.TimeoutError:
            raise APIError(
                503, "timeout", f"decoding and embedding took longer than {timeout} s"
            ) from None
        return _json(_pairs(pairs), version)

    def _embed_and_search(self, body, k):
        from ..io import AudioLoadError, load_audio

        try:
            y = load_audio(io.BytesIO(body), sr=self.sr, duration=self.settings["max_audio_s"])
        except AudioLoadError as exc:
            raise APIError(415, "not_audio", f"the upload is not readable audio: {exc}") from None
        vector = self.embedder.transform([y])[0]
        holder = self.thread_stores.get()  # this thread's store, at the current version
        try:
            return holder.store.similar_to_vector(vector, k=k), holder.version
        except ValueError as exc:  # the model's dimension does not match the store's
            raise APIError(500, "model_store_mismatch", str(exc)) from None

    async def health(self, request):
        """Liveness and what is served.

        ---
        summary: Health
        responses:
          200: {description: "{status, tracks, dim, metric, id_type, version, model}"}
        """
        holder = self.stores.get()
        store = holder.store
        info = {
            "status": "ok",
            "tracks": len(store),
            "dim": store.dim,
            "metric": store.metric,
            "id_type": store.id_type.__name__,
            "version": holder.version,
            "model": self.model is not None,
        }
        return _json(info, holder.version)

    async def metrics_text(self, request):
        """Request counts and latency histogram, Prometheus text format.

        ---
        summary: Metrics
        responses:
          200: {description: Prometheus text exposition format 0.0.4}
        """
        holder = self.stores.get()
        store = holder.store
        gauges = {
            "sklearn_music_store_tracks": ("gauge", "Tracks in the served store.", len(store)),
            "sklearn_music_store_swaps_total": (
                "counter",
                "Switches to a newly published store file.",
                holder.swaps,
            ),
            "sklearn_music_store_swap_failures_total": (
                "counter",
                "New store files that could not be opened.",
                holder.swap_failures,
            ),
            "sklearn_music_embed_in_flight": (
                "gauge",
                "Embedding requests running.",
                self.embed_running,
            ),
        }
        text = self.metrics.render(gauges)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


def _embedding_part(model):
    """(the steps that embed audio, their sampling rate) of a loaded model."""
    from sklearn.pipeline import Pipeline

    embedder = model
    if isinstance(model, Pipeline) and len(model) > 1 and hasattr(model[-1], "kneighbors"):
        embedder = model[:-1]  # the index step is not used: the store is searched
    steps = [s for _, s in embedder.steps] if isinstance(embedder, Pipeline) else [embedder]
    if not hasattr(embedder, "transform"):
        raise ValueError(f"the model {type(model).__name__} has no transform to embed audio")
    sr = next((s.sr for s in steps if isinstance(getattr(s, "sr", None), int)), 16000)
    return embedder, sr


async def _api_error(request, exc):
    return _error(exc.status, exc.code, exc.message, exc.headers)


async def _http_error(request, exc):
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _error(exc.status_code, code, exc.detail, exc.headers)


async def _server_error(request, exc):
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error(500, "internal_error", f"{type(exc).__name__}: {exc}")


DEFAULTS = {
    "max_k": 100,
    "max_history": 100,
    "max_json_bytes": 1 << 20,
    "max_upload_bytes": 20 << 20,
    "max_audio_s": 600.0,
    "embed_timeout": 30.0,
    "embed_concurrency": 1,
    "check_interval": 0.5,
}


def build_app(store, *, model=None, **settings):
    """The Starlette application (see :func:`sklearn_music.serve.create_app`)."""
    unknown = set(settings) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown settings {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    service = _Service(store, model=model, settings={**DEFAULTS, **settings})
    schema = SchemaGenerator(
        {
            "openapi": "3.0.3",
            "info": {"title": "sklearn_music similarity service", "version": _version()},
        }
    )
    routes = [
        Route("/tracks/{track_id:trackid}/similar", service.similar, methods=["GET"]),
        Route("/tracks/{track_id:trackid}/vector", service.vector, methods=["GET"]),
        Route("/recommend", service.recommend, methods=["POST"]),
        Route(
            "/users/{user_id:trackid}/recommendations",
            service.user_recommendations,
            methods=["GET"],
        ),
        Route("/similar", service.similar_audio, methods=["POST"]),
        Route("/health", service.health, methods=["GET"]),
        Route("/metrics", service.metrics_text, methods=["GET"]),
    ]

    async def openapi(request):
        return JSONResponse(schema.get_schema(routes=request.app.routes))

    routes.append(Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False))
    for r in routes:
        _ROUTE_NAMES[r.path] = r.path.replace(":trackid}", "}")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        service.pool.shutdown(wait=False, cancel_futures=True)
        service.recommend_pool.shutdown(wait=False, cancel_futures=True)
        service.stores.close()  # the event loop's thread: the one that runs this

    app = Starlette(
        routes=routes,
        exception_handlers={
            APIError: _api_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(_MetricsMiddleware, metrics=service.metrics)
    app.add_middleware(_FastSimilar, service=service)  # outermost of the user middleware
    return app


def _version():
    from .. import __version__

    return __version__
