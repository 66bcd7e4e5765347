"""Genre and artist descriptions of the synthesized music (:func:`make_tracks`).

A *genre* fixes the ranges of tempo, drum pattern, swing, scale, note density and
timbre; an *artist* is a genre, leaning towards another one, plus its own tweaks.
"""

import numpy as np

# Scales as semitone offsets from the tonic.
_SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "major_pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "whole_tone": (0, 2, 4, 6, 8, 10),
}

# Named genres, in the order make_tracks uses them. Drum patterns are one bar of
# sixteenth notes ("x" = hit). Continuous values are the genre's centre; artists and
# tracks scatter around them.
#   tempo: bpm range; swing: delay of off-beat sixteenths (fraction of a step);
#   density: melody notes per beat; rest: probability that a melody step is silent;
#   legato: fraction of the step a note is held; register: melody centre (MIDI);
#   rolloff: harmonic amplitude ~ h**-rolloff; even: gain of even harmonics;
#   attack / decay: note envelope time constants (s); drive: distortion (0 = clean);
#   vibrato: depth in semitones; levels: (drums, melody, bass, pad) mix weights.
_GENRES = {
    "rock": dict(
        tempo=(108, 138),
        swing=0.0,
        kick="x.......x.x.....",
        snare="....x.......x...",
        hat="x.x.x.x.x.x.x.x.",
        hat_decay=0.04,
        scale="minor_pentatonic",
        density=2.0,
        rest=0.15,
        legato=0.9,
        register=60,
        rolloff=1.0,
        even=1.0,
        attack=0.004,
        decay=0.8,
        drive=2.5,
        vibrato=0.05,
        levels=(1.0, 1.0, 0.6, 0.2),
    ),
    "techno": dict(
        tempo=(122, 136),
        swing=0.0,
        kick="x...x...x...x...",
        snare="....x.......x...",
        hat="..x...x...x...x.",
        hat_decay=0.09,
        scale="minor",
        density=4.0,
        rest=0.3,
        legato=0.5,
        register=57,
        rolloff=0.9,
        even=0.15,
        attack=0.002,
        decay=0.09,
        drive=0.5,
        vibrato=0.0,
        levels=(1.2, 0.8, 0.8, 0.3),
    ),
    "jazz": dict(
        tempo=(92, 150),
        swing=0.45,
        kick="x..........x....",
        snare="......x.......x.",
        hat="x...x.x.x...x.x.",
        hat_decay=0.12,
        scale="dorian",
        density=3.0,
        rest=0.25,
        legato=0.8,
        register=64,
        rolloff=1.8,
        even=0.6,
        attack=0.03,
        decay=0.6,
        drive=0.0,
        vibrato=0.15,
        levels=(0.45, 1.0, 0.7, 0.5),
    ),
    "ambient": dict(
        tempo=(60, 84),
        swing=0.0,
        kick="x...............",
        snare="................",
        hat="........x.......",
        hat_decay=0.2,
        scale="lydian",
        density=0.5,
        rest=0.2,
        legato=1.0,
        register=69,
        rolloff=3.0,
        even=1.0,
        attack=0.25,
        decay=3.0,
        drive=0.0,
        vibrato=0.08,
        levels=(0.1, 0.7, 0.3, 1.0),
    ),
    "folk": dict(
        tempo=(88, 116),
        swing=0.1,
        kick="x.......x.......",
        snare="....x.......x...",
        hat="................",
        hat_decay=0.05,
        scale="major",
        density=2.0,
        rest=0.1,
        legato=0.7,
        register=65,
        rolloff=1.4,
        even=1.0,
        attack=0.002,
        decay=0.35,
        drive=0.0,
        vibrato=0.0,
        levels=(0.35, 1.0, 0.5, 0.4),
    ),
    "hiphop": dict(
        tempo=(80, 96),
        swing=0.25,
        kick="x......x..x.....",
        snare="....x.......x...",
        hat="x.x.x.x.x.x.x.x.",
        hat_decay=0.03,
        scale="minor",
        density=1.0,
        rest=0.35,
        legato=0.8,
        register=55,
        rolloff=2.2,
        even=1.0,
        attack=0.01,
        decay=0.5,
        drive=0.3,
        vibrato=0.0,
        levels=(1.3, 0.6, 1.0, 0.4),
    ),
    "metal": dict(
        tempo=(150, 190),
        swing=0.0,
        kick="xxxxxxxxxxxxxxxx",
        snare="....x.......x...",
        hat="x.x.x.x.x.x.x.x.",
        hat_decay=0.03,
        scale="phrygian",
        density=4.0,
        rest=0.05,
        legato=0.95,
        register=52,
        rolloff=0.8,
        even=1.0,
        attack=0.002,
        decay=1.5,
        drive=6.0,
        vibrato=0.0,
        levels=(1.1, 1.0, 0.7, 0.1),
    ),
    "reggae": dict(
        tempo=(68, 88),
        swing=0.15,
        kick="........x.......",
        snare="........x.......",
        hat="..x...x...x...x.",
        hat_decay=0.05,
        scale="major",
        density=1.0,
        rest=0.4,
        legato=0.4,
        register=62,
        rolloff=1.5,
        even=0.8,
        attack=0.003,
        decay=0.2,
        drive=0.2,
        vibrato=0.0,
        levels=(0.8, 0.9, 1.0, 0.3),
    ),
}


# How far artists stray from their genre, and tracks from their artist (log-scale or
# additive standard deviations). These set how hard the classification task is; see
# the calibration numbers in the DESCR.
_ARTIST_SPREAD = 0.35
_TRACK_SPREAD = 0.25
_INFLUENCE = 0.35  # largest weight of an artist's leaning towards another genre
_SNR_DB = (0.0, 20.0)  # background noise, uniform in dB
_GAIN_DB = (-24.0, 0.0)  # peak level of the clip


def _genre_spec(index):
    """Return ``(name, params)`` of the genre at ``index``.

    Named genres come first; the others are generated from a generator seeded by their
    index only, so that a generated genre is the same whatever the ``random_state``.
    """
    names = list(_GENRES)
    if index < len(names):
        return names[index], dict(_GENRES[names[index]])
    rng = np.random.default_rng([index, 20240611])

    def pattern(p):
        return "".join("x" if h else "." for h in rng.random(16) < p)

    lo = float(rng.uniform(60, 170))
    spec = dict(
        tempo=(lo, lo * rng.uniform(1.05, 1.3)),
        swing=float(rng.choice([0.0, 0.0, 0.2, 0.4])),
        kick=pattern(rng.uniform(0.05, 0.5)),
        snare=pattern(rng.uniform(0.0, 0.3)),
        hat=pattern(rng.uniform(0.0, 0.8)),
        hat_decay=float(rng.uniform(0.02, 0.15)),
        scale=str(rng.choice(list(_SCALES))),
        density=float(rng.choice([0.5, 1.0, 2.0, 3.0, 4.0])),
        rest=float(rng.uniform(0.0, 0.4)),
        legato=float(rng.uniform(0.3, 1.0)),
        register=int(rng.integers(50, 72)),
        rolloff=float(rng.uniform(0.7, 3.0)),
        even=float(rng.uniform(0.0, 1.0)),
        attack=float(np.exp(rng.uniform(np.log(0.002), np.log(0.2)))),
        decay=float(np.exp(rng.uniform(np.log(0.08), np.log(3.0)))),
        drive=float(rng.choice([0.0, 0.0, 0.5, 2.0, 5.0])),
        vibrato=float(rng.choice([0.0, 0.05, 0.15])),
        levels=tuple(rng.uniform(0.1, 1.2, size=4)),
    )
    return f"genre_{index:02d}", spec


def _vary_pattern(pattern, rng, p):
    """Flip each step of a 16-step pattern with probability ``p``; return a bool array."""
    steps = np.array([c == "x" for c in pattern])
    return steps ^ (rng.random(steps.size) < p)


def _blend(spec, other, weight, rng):
    """Move a genre's parameters towards another genre's by ``weight`` in [0, 1].

    Positive scale parameters are interpolated geometrically, the others linearly; each
    drum step is taken from ``other`` with probability ``weight``. This is how an artist
    shows an influence from another genre, and what makes genres overlap.
    """
    out = dict(spec)

    def geo(a, b):
        return float(a ** (1 - weight) * b**weight)

    def lin(a, b):
        return float((1 - weight) * a + weight * b)

    out["tempo"] = tuple(geo(a, b) for a, b in zip(spec["tempo"], other["tempo"]))
    for key in ("hat_decay", "rolloff", "attack", "decay", "density"):
        out[key] = geo(spec[key], other[key])
    for key in ("swing", "rest", "legato", "register", "even", "drive", "vibrato"):
        out[key] = lin(spec[key], other[key])
    out["levels"] = tuple(lin(a, b) for a, b in zip(spec["levels"], other["levels"]))
    for key in ("kick", "snare", "hat"):
        take = rng.random(16) < weight
        out[key] = "".join(o if t else c for c, o, t in zip(spec[key], other[key], take))
    return out


def _make_artist(spec, rng, spread, influences):
    """Perturb a genre's parameters into an artist's.

    The artist leans towards a genre drawn from ``influences`` (weight uniform in
    ``[0, _INFLUENCE]``), then every parameter is scattered by ``spread``.
    """
    if influences:
        other = influences[rng.integers(len(influences))]
        spec = _blend(spec, other, rng.uniform(0.0, _INFLUENCE), rng)

    def lognormal():
        return float(np.exp(rng.normal(0.0, spread)))

    lo, hi = spec["tempo"]
    shift = lognormal() ** 0.3
    return dict(
        spec,
        tempo=(lo * shift, hi * shift),
        kick=_vary_pattern(spec["kick"], rng, 0.1 * spread),
        snare=_vary_pattern(spec["snare"], rng, 0.1 * spread),
        hat=_vary_pattern(spec["hat"], rng, 0.1 * spread),
        hat_decay=spec["hat_decay"] * lognormal(),
        register=spec["register"] + rng.normal(0.0, 10.0 * spread),
        rolloff=spec["rolloff"] * lognormal(),
        even=float(np.clip(spec["even"] + rng.normal(0.0, spread), 0.0, 1.0)),
        attack=spec["attack"] * lognormal(),
        decay=spec["decay"] * lognormal(),
        drive=spec["drive"] * lognormal(),
        levels=tuple(level * lognormal() for level in spec["levels"]),
        kick_pitch=55.0 * lognormal() ** 0.5,
        snare_tone=190.0 * lognormal() ** 0.5,
        rest=float(np.clip(spec["rest"] + rng.normal(0.0, 0.3 * spread), 0.0, 0.8)),
        legato=float(np.clip(spec["legato"] * lognormal(), 0.1, 1.0)),
    )
