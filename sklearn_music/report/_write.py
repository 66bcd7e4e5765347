"""``write_report``: a static listening report of a similarity store (or two, blind)."""

import json
import secrets
import shutil
from numbers import Integral, Real
from os import PathLike
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils import Bunch, check_random_state

from .._assessor import KEY_FORMAT
from ..store import SimilarityStore
from ..utils._sklearn_compat import Interval, StrOptions, validate_params
from . import _media
from ._page import render_page
from ._why import _split_model, patch_embeddings, representative_offset

__all__ = ["write_report"]

_SUBFOLDERS = ("audio", "thumbs", "why")


def _open(store):
    return store if isinstance(store, SimilarityStore) else SimilarityStore(store)


def _pick_queries(stores, queries, tracks, rng):
    """The query ids: ``tracks`` checked against every store, or a seeded sample."""
    if tracks is not None:
        tracks = list(tracks)
        for store in stores:
            missing = [t for t in tracks if t not in store]
            if missing:
                raise KeyError(f"query track {missing[0]!r} is not in the store {store.path}")
        return tracks
    ids = sorted(stores[0], key=str)
    for store in stores[1:]:
        ids = [t for t in ids if t in store]
    if not ids:
        raise ValueError(f"the store {stores[0].path} holds no track (of both stores)")
    chosen = rng.choice(len(ids), size=min(queries, len(ids)), replace=False)
    return [ids[i] for i in sorted(chosen)]


def _label(track, labels):
    if labels is None:
        return None
    if labels == "folder":
        text = str(track)
        return text.split("/", 1)[0] if "/" in text else None
    value = labels.get(track)
    return None if value is None else str(value)


def _items_single(qi, store, query, k):
    return [
        {"item": f"q{qi}-n{rank}", "track": t, "rank": rank, "score": float(score)}
        for rank, (t, score) in enumerate(store.similar(query, k=k), 1)
    ]


def _items_ab(store_a, store_b, query, k, rng, key):
    """Both stores' neighbours of ``query`` merged, shuffled, under opaque item ids."""
    merged = {}
    for origin, store in (("a", store_a), ("b", store_b)):
        for rank, (t, score) in enumerate(store.similar(query, k=k), 1):
            entry = merged.setdefault(t, {"query": query, "track": t, "a": None, "b": None})
            entry[origin], entry[f"score_{origin}"] = rank, float(score)
    items = []
    for t in [list(merged)[i] for i in rng.permutation(len(merged))]:
        item = f"{int(rng.integers(2**40)):010x}"
        while item in key:
            item = f"{int(rng.integers(2**40)):010x}"
        key[item] = merged[t]
        items.append({"item": item, "track": t})
    return items


def _file(music_dir, track):
    path = Path(music_dir) / str(track)
    if not path.is_file():
        raise FileNotFoundError(
            f"track {track!r}: no audio file {str(path)!r} under music_dir "
            f"{str(music_dir)!r} (the store's ids are the paths relative to the folder "
            "that was indexed)"
        )
    return path


def _prepare_out(out):
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"out={str(out)!r} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "index.html").is_file():
        raise FileExistsError(
            f"out={str(out)!r} is a folder that holds something other than a report: "
            "pass a new or empty folder"
        )
    for name in _SUBFOLDERS:
        shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    for name in _SUBFOLDERS:
        (out / name).mkdir()
    return out


def _load_model(model):
    if model is None or hasattr(model, "steps"):
        return model
    from ..persistence import load_model

    return load_model(model)


class _Window:
    """A decoded stretch of a track (int16), to cut excerpts from without decoding again."""

    def __init__(self, path, duration, y=None, sr=None, begin=0.0):
        self.path, self.duration, self.sr, self.begin = path, duration, sr, begin
        self.pcm = None
        if y is not None:
            self.pcm = np.round(np.clip(y, -1.0, 1.0) * 32767).astype(np.int16)

    def excerpt(self, start, duration, sr):
        if self.pcm is not None and sr == self.sr:
            a = int(round((start - self.begin) * sr))
            b = a + int(round(duration * sr))
            if a >= 0 and b <= len(self.pcm) + sr // 50:  # rounding at the track's end
                return self.pcm[a:b].astype(np.float32) / 32767
        return _media.read_excerpt(self.path, offset=start, duration=duration, sr=sr)


def _track_media(out, n, path, model, *, excerpt_seconds, excerpt_offset, analysis_seconds, sr):
    """Excerpt and thumbnail of one track; with a model its patch embeddings too.

    Returns the page's media of the track, ``(patch embeddings, their offsets)`` and
    the decoded stretch of the track (a :class:`_Window`).
    """
    duration = _media.track_duration(path)
    span = min(excerpt_seconds, duration)
    emb = off = None
    window = _Window(path, duration)
    if model is not None:
        length = duration if analysis_seconds is None else min(duration, analysis_seconds)
        begin = (duration - length) / 2
        y = _media.read_excerpt(path, offset=begin, duration=length, sr=model[0].sr)
        _, embedder, _ = _split_model(model)
        # patches side by side: half the work of the embedder's overlapping ones
        (emb,), (off,), patch_seconds = patch_embeddings(model, [y], hop=embedder.patch_frames)
        off = off + begin
        start = representative_offset(emb, off) + patch_seconds / 2 - span / 2
        window = _Window(path, duration, y, model[0].sr, begin)
    elif excerpt_offset is None:
        start = (duration - span) / 2
    else:
        start = excerpt_offset
    start = float(np.clip(start, 0.0, max(0.0, duration - span)))
    y = window.excerpt(start, span, sr)
    _media.write_ogg(out / "audio" / f"t{n}.ogg", y, sr)
    _media.write_thumbnail(out / "thumbs" / f"t{n}.png", y, sr)
    media = {"audio": f"audio/t{n}.ogg", "thumb": f"thumbs/t{n}.png", "offset": start}
    return media, (emb, off), window


def _why_media(out, item, windows, patches, patch_seconds, *, seconds, sr):
    """Heat map of the patch similarities of a pair and its two best-matching moments."""
    (emb_q, off_q), (emb_n, off_n) = patches
    similarity = emb_q @ emb_n.T
    i, j = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
    _media.write_heatmap(out / "why" / f"{item}.png", similarity)
    why = {"heat": f"why/{item}.png", "offsets": [float(off_q[i]), float(off_n[j])]}
    for name, window, start in (
        ("query", windows[0], off_q[i]),
        ("neighbour", windows[1], off_n[j]),
    ):
        span = min(seconds, window.duration)
        begin = float(start) + patch_seconds / 2 - span / 2  # centred on the patch...
        begin = float(np.clip(begin, 0.0, window.duration - span))  # ...inside the track
        y = window.excerpt(begin, span, sr)
        _media.write_ogg(out / "why" / f"{item}-{name[0]}.ogg", y, sr)
        why[name] = f"why/{item}-{name[0]}.ogg"
    return why


def _plan(stores, query_ids, k, rng, labels):
    """The page's queries and items (no media yet) and the A/B key (empty if one store)."""
    key, queries = {}, []
    for qi, query in enumerate(query_ids):
        if len(stores) == 1:
            items = _items_single(qi, stores[0], query, k)
        else:
            items = _items_ab(stores[0], stores[1], query, k, rng, key)
        for it in items:
            it["label"] = _label(it["track"], labels)
        queries.append({"track": query, "label": _label(query, labels), "items": items})
    return queries, key


def _add_media(out, queries, music_dir, model, *, sr, **excerpt):
    """Write every track's excerpt and thumbnail (once per track) and the "why" media."""
    tracks = {}  # track id -> (number, path)
    for q in queries:
        for t in [q["track"]] + [it["track"] for it in q["items"]]:
            if t not in tracks:
                tracks[t] = (len(tracks), _file(music_dir, t))
    media, patches, windows = {}, {}, {}
    for t, (n, path) in tracks.items():
        media[t], patches[t], windows[t] = _track_media(
            out,
            n,
            path,
            model,
            sr=sr,
            **excerpt,
        )
    patch_seconds = None
    if model is not None:
        _, embedder, frame_seconds = _split_model(model)
        patch_seconds = embedder.patch_frames * frame_seconds
    for q in queries:
        q.update(media[q["track"]])
        for it in q["items"]:
            it.update({k: v for k, v in media[it["track"]].items() if k != "offset"})
            if model is not None:
                it["why"] = _why_media(
                    out,
                    it["item"],
                    (windows[q["track"]], windows[it["track"]]),
                    (patches[q["track"]], patches[it["track"]]),
                    patch_seconds,
                    seconds=max(4.0, 2 * patch_seconds),
                    sr=sr,
                )
    return len(tracks)


@validate_params(
    {
        "store": [str, PathLike, SimilarityStore],
        "music_dir": [str, PathLike],
        "out": [str, PathLike],
        "queries": [Interval(Integral, 1, None, closed="left")],
        "tracks": ["array-like", None],
        "k": [Interval(Integral, 1, None, closed="left")],
        "model": [str, PathLike, Pipeline, None],
        "store_b": [str, PathLike, SimilarityStore, None],
        "labels": [StrOptions({"folder"}), dict, None],
        "excerpt_seconds": [Interval(Real, 0, None, closed="neither")],
        "excerpt_offset": [Interval(Real, 0, None, closed="left"), None],
        "analysis_seconds": [Interval(Real, 0, None, closed="neither"), None],
        "sr": [Interval(Integral, 4000, None, closed="left")],
        "title": [str, None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def write_report(
    store,
    *,
    music_dir,
    out,
    queries=20,
    tracks=None,
    k=10,
    model=None,
    store_b=None,
    labels="folder",
    excerpt_seconds=15.0,
    excerpt_offset=None,
    analysis_seconds=60.0,
    sr=16000,
    title=None,
    random_state=None,
):
    """Write a static listening report: query tracks, their neighbours, judgment buttons.

    The folder ``out`` holds ``index.html`` (CSS and script inline) and the media
    in ``audio/``, ``thumbs/`` and ``why/``; it opens in a browser from disk, no
    server needed. Each query track gets a player of an excerpt; each of its ``k``
    nearest tracks a player, its score, its label and a mel-spectrogram
    thumbnail, and three buttons: similar, not similar, unsure. The judgments
    are kept in the browser (``localStorage``) and downloaded as a JSON file
    with the assessor's name, which :func:`~sklearn_music.metrics.assessor_report`
    scores.

    With ``store_b`` the report is a blind A/B test: the neighbours of both
    stores are merged (a track in both lists is shown once), shuffled and shown
    without scores or ranks under opaque item ids; the key that maps the items
    back to the stores is written *beside* the folder, to
    ``<out>.key.json``, so that the folder handed to the assessors does not
    hold it.

    Parameters
    ----------
    store : str, path-like or SimilarityStore
        The similarity store (store A of an A/B report).
    music_dir : str or path-like
        The folder that was indexed: a track id is a path relative to it.
    out : str or path-like
        The report folder, created if missing; a previous report there is
        replaced, a folder holding anything else is refused.
    queries : int, default=20
        Number of query tracks drawn at random from the store (ignored when
        ``tracks`` is given).
    tracks : array-like of track ids, default=None
        The query tracks.
    k : int, default=10
        Neighbours per query (per store in an A/B report).
    model : str, path-like or Pipeline, default=None
        The fitted model (or the ``.skops`` file saved by ``fit``) that indexed
        the store. With it every excerpt starts at the track's most
        representative moment (the patch nearest the mean of its patch
        embeddings) and every pair gets a "why similar" heat map of
        :func:`why_similar` with the two best-matching moments playable; without
        it the excerpts are taken from the middle of the tracks (or at
        ``excerpt_offset``).
    store_b : str, path-like or SimilarityStore, default=None
        A second store of the same tracks: makes a blind A/B report.
    labels : "folder", dict or None, default="folder"
        The label shown with each track: ``"folder"`` = the first folder of its
        id (``album/track.ogg`` -> ``album``), a dict id -> label, or None.
    excerpt_seconds : float, default=15.0
        Length of the excerpts (the whole track when shorter).
    excerpt_offset : float, default=None
        Start of the excerpts in seconds when there is no ``model``; ``None``
        centres them on the middle of the track.
    analysis_seconds : float, default=60.0
        With a ``model``: the seconds in the middle of each track that are
        embedded patch by patch (the representative moment and the heat maps
        are looked for there); ``None`` embeds whole tracks (slower: every track
        is decoded whole).
    sr : int, default=16000
        Sampling rate of the excerpts (mono OGG/Vorbis).
    title : str, default=None
        Title of the page.
    random_state : int, RandomState instance or None, default=None
        Draws the queries and shuffles the A/B lists.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        ``index`` (path of ``index.html``), ``key`` (path of the A/B key or
        None), ``n_queries``, ``n_items`` (pairs to judge), ``n_tracks`` (tracks
        with an excerpt) and ``size`` (bytes in the folder).

    Raises
    ------
    FileNotFoundError
        If a track of the report has no file under ``music_dir``; the message
        names the track id.

    See Also
    --------
    sklearn_music.metrics.assessor_report : Scores the downloaded judgments.
    why_similar : The patch-by-patch similarity behind the heat maps.

    Examples
    --------
    >>> import soundfile as sf
    >>> from sklearn_music.datasets import make_tracks
    >>> from sklearn_music.report import write_report
    >>> from sklearn_music.store import SimilarityStore
    >>> tmp = getfixture("tmp_path")
    >>> data = make_tracks(6, n_genres=2, duration=2.0, sr=8000, random_state=0)
    >>> ids = []
    >>> for i, (y, genre) in enumerate(zip(data.data, data.genre)):
    ...     (tmp / "music" / genre).mkdir(parents=True, exist_ok=True)
    ...     sf.write(tmp / "music" / genre / f"{i}.wav", y, 8000)
    ...     ids.append(f"{genre}/{i}.wav")
    >>> SimilarityStore.build(tmp / "s.db", data.data[:, ::400], ids, n_neighbors=3)
    >>> result = write_report(
    ...     tmp / "s.db", music_dir=tmp / "music", out=tmp / "report", queries=2, k=3,
    ...     random_state=0)
    >>> result.n_queries, result.n_items, result.index.name
    (2, 6, 'index.html')
    """
    rng = check_random_state(random_state)
    rng = np.random.default_rng(int(rng.randint(0, 2**31 - 1)))
    stores = [_open(store)] + ([] if store_b is None else [_open(store_b)])
    query_ids = _pick_queries(stores, queries, tracks, rng)
    plan, key = _plan(stores, query_ids, k, rng, labels)
    for q in plan:  # fail on a missing file before writing anything
        for t in [q["track"]] + [it["track"] for it in q["items"]]:
            _file(music_dir, t)
    out = _prepare_out(out)
    n_tracks = _add_media(
        out,
        plan,
        music_dir,
        _load_model(model),
        excerpt_seconds=float(excerpt_seconds),
        excerpt_offset=excerpt_offset,
        analysis_seconds=analysis_seconds,
        sr=int(sr),
    )
    mode = "single" if store_b is None else "ab"
    report_id = secrets.token_hex(8)
    if title is None:
        title = "Listening test" if mode == "single" else "Listening test (blind comparison)"
    data = {"report": report_id, "mode": mode, "title": title, "k": int(k), "queries": plan}
    index = out / "index.html"
    index.write_text(render_page(data), encoding="utf-8")
    key_path = None
    if mode == "ab":
        key_path = out.with_name(out.name + ".key.json")
        doc = {
            "format": KEY_FORMAT,
            "report": report_id,
            "store_a": str(stores[0].path),
            "store_b": str(stores[1].path),
            "items": key,
        }
        key_path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return Bunch(
        index=index,
        key=key_path,
        n_queries=len(plan),
        n_items=sum(len(q["items"]) for q in plan),
        n_tracks=n_tracks,
        size=size,
    )
