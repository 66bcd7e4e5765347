"""Synthetic lyrics for :func:`make_tracks` (``lyrics=True``).

A lyric is a bag of words drawn from four pools: common English filler words shared
by every track, pseudo-words of the track's genre, pseudo-words of its artist, and
noise pseudo-words made up for that one track (so that a model meets unseen words).
A fraction of the tracks are instrumental (``None``). Each artist also has an era,
around which the release years of its tracks scatter.
"""

import numpy as np

_COMMON = (
    "the a you and i my me we oh yeah baby night love heart time go know feel "
    "come down up away home light day tonight never again all your in on"
).split()
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sh", "tr")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
_GENRE_WORDS = 24  # pseudo-words per genre
_ARTIST_WORDS = 12  # pseudo-words per artist
# probability of each pool for one word: common, genre, artist, noise
_MIX = (0.45, 0.2, 0.25, 0.1)
_WORDS = (24, 64)  # words per lyric, uniform
_INSTRUMENTAL = 0.2  # fraction of tracks without lyrics
_ERAS = (1965, 2020)  # artist eras, uniform
_YEAR_SD = 4.0  # spread of a track's year around its artist's era


def _pseudo_word(rng):
    """A made-up word of 2 or 3 syllables."""
    n = int(rng.integers(2, 4))
    return "".join(
        _ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))] for _ in range(n)
    )


def _word_pools(n_pools, size, rng, taken):
    """``n_pools`` lists of ``size`` distinct pseudo-words, none in ``taken``."""
    pools = []
    for _ in range(n_pools):
        pool = []
        while len(pool) < size:
            word = _pseudo_word(rng)
            if word not in taken:
                taken.add(word)
                pool.append(word)
        pools.append(pool)
    return pools


def _make_lyrics(genre_idx, artist_idx, n_genres, n_artists, rng):
    """Lyrics (``None`` for an instrumental track) and release year of every track."""
    taken = set(_COMMON)
    genre_pools = _word_pools(n_genres, _GENRE_WORDS, rng, taken)
    artist_pools = _word_pools(n_artists, _ARTIST_WORDS, rng, taken)
    eras = rng.uniform(*_ERAS, size=n_artists)
    lyrics = []
    for g, a in zip(genre_idx, artist_idx):
        if rng.random() < _INSTRUMENTAL:
            lyrics.append(None)
            continue
        n_words = int(rng.integers(_WORDS[0], _WORDS[1] + 1))
        pools = rng.choice(4, size=n_words, p=_MIX)
        words = []
        for p in pools:
            if p == 3:
                words.append(_pseudo_word(rng))
                continue
            pool = (_COMMON, genre_pools[g], artist_pools[a])[p]
            words.append(pool[rng.integers(len(pool))])
        lines = [" ".join(words[i : i + 8]) for i in range(0, n_words, 8)]
        lyrics.append("\n".join(line.capitalize() for line in lines))
    year = np.round(eras[artist_idx] + rng.normal(0.0, _YEAR_SD, size=len(artist_idx)))
    return np.array(lyrics, dtype=object), year
