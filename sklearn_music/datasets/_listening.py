"""Simulated listeners: play counts of users with genre and artist tastes."""

from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch, check_random_state

from ..utils._sklearn_compat import Interval, validate_params

__all__ = ["make_listening"]

_DESCR = """\
Simulated listening data
------------------------

Each user has a taste for every genre and every artist (independent standard
normal draws, scaled by ``genre_weight`` and ``artist_weight``); each track has
a Zipf popularity ``rank ** -popularity_skew`` (ranks drawn at random). A user's
plays follow

    p(track) ∝ exp(genre_weight * G[user, genre] + artist_weight * A[user, artist])
               * popularity(track)

mixed with a uniform choice over all tracks for a fraction ``noise`` of the
plays. The number of plays of a user is ``1 + Poisson(n_plays - 1)``.

Fields: ``plays`` (sparse user x track counts), ``user_ids``, ``track_ids``,
``genre_taste`` (n_users, n_genres), ``artist_taste`` (n_users, n_artists),
``favourite_genre``, ``popularity``, ``genre``, ``artist``, ``genre_names``,
``artist_names`` and optionally ``frame`` (long DataFrame ``user_id, track_id,
plays``).
"""


def _labels(tracks):
    """genre, artist (or None) and track ids from a Bunch / mapping or a label array."""
    track_ids = None
    if isinstance(tracks, Mapping) or hasattr(tracks, "genre"):
        get = tracks.get if isinstance(tracks, Mapping) else lambda k: getattr(tracks, k, None)
        genre = get("genre")
        if genre is None:
            raise ValueError(
                "tracks has no 'genre' field: pass make_tracks' Bunch or a label array"
            )
        artist = get("artist")
        track_ids = get("track_ids")
        if track_ids is None:
            track_ids = get("filenames")
    else:
        genre, artist = tracks, None
    genre = np.asarray(genre)
    if genre.ndim != 1 or genre.size == 0:
        raise ValueError(f"genre labels must be a non-empty 1-D array, got shape {genre.shape}")
    if artist is not None:
        artist = np.asarray(artist)
        if artist.shape != genre.shape:
            raise ValueError(
                f"artist labels have shape {artist.shape} but genre labels {genre.shape}"
            )
    if track_ids is None:
        track_ids = np.arange(genre.size)
    else:
        track_ids = np.asarray(track_ids)
        if track_ids.shape != genre.shape:
            raise ValueError(
                f"track ids have shape {track_ids.shape} but genre labels {genre.shape}"
            )
    return genre, artist, track_ids


@validate_params(
    {
        "tracks": "no_validation",
        "n_users": [Interval(Integral, 1, None, closed="left")],
        "n_plays": [Interval(Real, 1, None, closed="left")],
        "genre_weight": [Interval(Real, 0, None, closed="left")],
        "artist_weight": [Interval(Real, 0, None, closed="left")],
        "popularity_skew": [Interval(Real, 0, None, closed="left")],
        "noise": [Interval(Real, 0, 1, closed="both")],
        "random_state": ["random_state"],
        "as_frame": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def make_listening(
    tracks,
    n_users=500,
    *,
    n_plays=50,
    genre_weight=3.0,
    artist_weight=1.5,
    popularity_skew=0.5,
    noise=0.05,
    random_state=None,
    as_frame=False,
):
    """Simulate play counts of users with genre and artist tastes.

    Every user has a taste for every genre and artist; a user's plays are drawn
    from the tracks with probabilities that grow exponentially with the tastes
    for their genre and artist, times a Zipf popularity, mixed with a fraction
    ``noise`` of plays drawn uniformly. The planted tastes come back with the
    plays, so that tests can check what a factor model recovers.

    Parameters
    ----------
    tracks : Bunch, dict or array-like of shape (n_tracks,)
        The output of :func:`~sklearn_music.datasets.make_tracks` (its ``genre``
        and ``artist`` fields are used, and ``track_ids`` or ``filenames`` when
        present), any mapping with those keys, or one array of labels (used as
        the genre; for example album names, for "album tastes").

    n_users : int, default=500
        Number of users.

    n_plays : float, default=50
        Mean number of plays per user (every user plays at least once).

    genre_weight : float, default=3.0
        Scale of the genre tastes: 0 ignores genres, large values make users
        play almost only their favourite genre.

    artist_weight : float, default=1.5
        Scale of the artist tastes (ignored without artist labels).

    popularity_skew : float, default=0.5
        Exponent ``s`` of the Zipf popularity ``rank ** -s``; 0 makes all tracks
        equally popular.

    noise : float, default=0.05
        Fraction of the plays that go to a track drawn uniformly at random.

    random_state : int, RandomState instance or None, default=None
        Seed of the simulation; an int gives identical data.

    as_frame : bool, default=False
        Also return the plays as a long pandas DataFrame ``frame`` with columns
        ``user_id``, ``track_id``, ``plays``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``plays`` (:class:`scipy.sparse.csr_matrix` of shape (n_users, n_tracks),
        int64 play counts), ``user_ids``, ``track_ids``, ``genre_taste``
        (n_users, n_genres), ``artist_taste`` (n_users, n_artists, or
        (n_users, 0) without artist labels), ``favourite_genre`` (n_users,),
        ``popularity`` (n_tracks,), ``genre``, ``artist``, ``genre_names``,
        ``artist_names``, ``DESCR`` and, with ``as_frame=True``, ``frame``.

    See Also
    --------
    sklearn_music.ImplicitFactors : Factorises the play counts.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_music.datasets import make_listening
    >>> genre = np.repeat(["rock", "jazz"], 10)
    >>> listening = make_listening(genre, n_users=30, random_state=0)
    >>> listening.plays.shape
    (30, 20)
    >>> listening.genre_taste.shape
    (30, 2)
    """
    rng = check_random_state(random_state)
    genre, artist, track_ids = _labels(tracks)
    n_tracks = genre.size
    genre_names, genre_code = np.unique(genre, return_inverse=True)
    genre_taste = rng.standard_normal((n_users, genre_names.size))
    logits = genre_weight * genre_taste[:, genre_code]
    if artist is not None:
        artist_names, artist_code = np.unique(artist, return_inverse=True)
        artist_taste = rng.standard_normal((n_users, artist_names.size))
        logits += artist_weight * artist_taste[:, artist_code]
    else:
        artist_names = np.asarray([], dtype=genre_names.dtype)
        artist_taste = np.zeros((n_users, 0))
    ranks = rng.permutation(n_tracks) + 1
    popularity = ranks.astype(float) ** -popularity_skew
    popularity /= popularity.sum()
    logits += np.log(popularity)
    logits -= logits.max(axis=1, keepdims=True)
    prob = np.exp(logits)
    prob /= prob.sum(axis=1, keepdims=True)
    prob = (1.0 - noise) * prob + noise / n_tracks
    prob /= prob.sum(axis=1, keepdims=True)

    totals = 1 + rng.poisson(n_plays - 1, size=n_users)
    counts = np.vstack([rng.multinomial(totals[u], prob[u]) for u in range(n_users)])
    plays = sp.csr_matrix(counts.astype(np.int64))

    width = len(str(n_users - 1))
    user_ids = np.asarray([f"user{u:0{width}d}" for u in range(n_users)])
    bunch = Bunch(
        plays=plays,
        user_ids=user_ids,
        track_ids=track_ids,
        genre_taste=genre_taste,
        artist_taste=artist_taste,
        favourite_genre=genre_names[np.argmax(genre_taste, axis=1)],
        popularity=popularity,
        genre=genre,
        artist=artist,
        genre_names=genre_names,
        artist_names=artist_names,
        DESCR=_DESCR,
    )
    if as_frame:
        import pandas as pd

        coo = plays.tocoo()
        order = np.lexsort((coo.col, coo.row))
        bunch.frame = pd.DataFrame(
            {
                "user_id": user_ids[coo.row[order]],
                "track_id": track_ids[coo.col[order]],
                "plays": coo.data[order],
            }
        )
    return bunch
