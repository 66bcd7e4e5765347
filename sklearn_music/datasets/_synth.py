"""Synthesized music clips with genre and artist labels: :func:`make_tracks`.

Every clip is rendered from a small symbolic description: a drum pattern (kick, snare and
hi-hat synthesized from decaying sines and noise bursts), a melody drawn from a scale, a
bass line and a chord pad following a random progression. A *genre* fixes the ranges of
these choices (tempo, pattern, scale, timbre, note density); an *artist* is a genre plus
its own tweaks (timbre, tempo offset, register, pattern variation); a *track* is an artist
plus per-clip randomness (exact tempo, key, melody, gain, recording colour and background
noise). Rendering is vectorised with numpy: no python loop runs per sample or per note
(only per drum hit, which adds one short slice).
"""

from numbers import Integral, Real

import numpy as np
from scipy import signal
from sklearn.utils import Bunch, check_random_state

from ..utils._sklearn_compat import Interval, validate_params

__all__ = ["make_tracks"]

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

_N_HARMONICS = 10
_BLOCK = 1 << 16  # samples rendered at a time: bounds the temporaries of long clips

# How far artists stray from their genre, and tracks from their artist (log-scale or
# additive standard deviations). These set how hard the classification task is; see
# the calibration numbers in the DESCR.
_ARTIST_SPREAD = 0.35
_TRACK_SPREAD = 0.25
_INFLUENCE = 0.35  # largest weight of an artist's leaning towards another genre
_SNR_DB = (0.0, 20.0)  # background noise, uniform in dB
_GAIN_DB = (-24.0, 0.0)  # peak level of the clip

_DESCR = """\
Synthesized music genres
------------------------

**Data set characteristics:**

    :Number of tracks: ``n_tracks`` (default 200), genres as balanced as possible
    :Number of genres: ``n_genres`` (default 4)
    :Artists per genre: ``n_artists_per_genre`` (default 3), balanced within a genre
    :Clip: ``duration`` seconds (default 10) of mono float32 audio at ``sr`` Hz
        (default 16000), peak at most 1
    :Named genres: {named};
        further genres are generated (``genre_08``, ...)

Each clip is rendered from a drum pattern (kick, snare and hi-hat synthesized from
decaying sines and filtered noise bursts), a melody drawn from a scale, a bass line and a
chord pad. A genre fixes the tempo range, drum pattern, swing, scale, note density and
timbre (harmonic profile, envelope, distortion). Each artist leans towards another genre
of the collection (by a random weight up to {influence:g}) and tweaks the result (timbre,
tempo offset, register, drum pattern). Each track draws its own tempo, key, melody and
chord progression, a random peak gain ({gain_lo:g} to {gain_hi:g} dB), a random recording
colour (low-pass tilt) and background noise (SNR {snr_lo:g} to {snr_hi:g} dB), so that
genre recognition is not trivial.

**Calibration.** With the default settings, 20 MFCCs (librosa defaults at 16 kHz)
summarised by their mean and standard deviation over time plus the standard deviation of
their deltas, standardised, and classified by a 1-nearest-neighbour classifier in
stratified 5-fold cross-validation give, as mean (range) over random_state 0 to 4:

    :Genre accuracy: {genre_acc} (chance 0.25)
    :Artist accuracy: {artist_acc} (chance 0.083)
"""

# Measured by the procedure above: `python tests/test_datasets.py` prints these numbers
# (and the test suite checks loose bounds on them).
_CALIBRATION = {
    "genre_acc": "0.685 (0.595 to 0.760)",
    "artist_acc": "0.454 (0.375 to 0.505)",
}


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


def _midi_to_hz(midi):
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69.0) / 12.0)


def _harmonic_sum(phase, gains, seg):
    """Sum over ``h`` of ``gains[h - 1] * sin(h * phase)``.

    Uses the Chebyshev recurrence ``sin((h+1)x) = 2 cos(x) sin(hx) - sin((h-1)x)``, so only
    one sine and one cosine are evaluated per sample. ``gains[h - 1]`` is a number, or a
    float32 array of one gain per note (indexed per sample by ``seg``) where harmonic
    ``h`` must be silenced for the notes it would alias.
    """
    s_prev = np.zeros_like(phase)
    s_cur = np.sin(phase)
    two_cos = 2.0 * np.cos(phase)
    out = _scaled(gains[0], s_cur, seg)
    for gain in gains[1:]:
        s_next = two_cos * s_cur
        s_next -= s_prev
        s_prev, s_cur = s_cur, s_next
        if np.ndim(gain) or gain != 0.0:
            out += _scaled(gain, s_cur, seg)
    return out


def _scaled(gain, x, seg):
    return (gain[seg] if np.ndim(gain) else np.float32(gain)) * x


def _rms_normalise(x):
    rms = np.sqrt(np.mean(x**2))
    return x / rms if rms > 0 else x


def _drum_samples(artist, rng, sr):
    """Kick, snare and hi-hat one-shots for one track."""
    t = np.arange(int(0.35 * sr)) / sr
    f_kick = artist["kick_pitch"] + 100.0 * np.exp(-t / 0.025)
    kick = np.sin(2 * np.pi * np.cumsum(f_kick) / sr) * np.exp(-t / 0.12)
    kick[: int(0.002 * sr)] += rng.normal(0, 0.3, int(0.002 * sr))

    t_snare = t[: int(0.25 * sr)]
    noise = np.diff(rng.normal(size=t_snare.size + 1))
    snare = (0.8 * noise + np.sin(2 * np.pi * artist["snare_tone"] * t_snare)) * np.exp(
        -t_snare / 0.06
    )

    t_hat = t[: int(min(0.35, 6 * artist["hat_decay"]) * sr)]
    hiss = np.diff(rng.normal(size=t_hat.size + 2), n=2)
    hat = 0.5 * hiss * np.exp(-t_hat / artist["hat_decay"])
    return kick.astype(np.float32), snare.astype(np.float32), hat.astype(np.float32)


def _render_drums(artist, rng, bpm, n_samples, sr):
    step = 60.0 / bpm / 4.0  # sixteenth notes
    n_steps = int(np.ceil(n_samples / sr / step)) + 1
    k = np.arange(n_steps)
    times = k * step + (k % 2) * artist["swing"] * step
    pos = np.round(times * sr).astype(int)
    keep = pos < n_samples
    out = np.zeros(n_samples, dtype=np.float32)
    fills = 0.03  # per-step chance that a hit is added or dropped in this track
    for pattern, sample in zip(
        (artist["kick"], artist["snare"], artist["hat"]), _drum_samples(artist, rng, sr)
    ):
        hits = np.resize(pattern, n_steps) ^ (rng.random(n_steps) < fills)
        hits &= keep
        if not hits.any():
            continue
        _place_hits(out, pos[hits], rng.uniform(0.6, 1.0, hits.sum()), sample)
    return out


def _render_voice(onsets, midi, amp, gate, n_samples, sr, *, harmonics, attack, decay, vibrato=0.0):
    """Notes at ``onsets`` (samples) held for ``gate`` samples.

    ``midi`` is an array of shape (n_notes,) for one voice, or (n_voices, n_notes) for
    voices that share the onsets and the envelope (a chord). ``onsets`` must be
    increasing and start at 0. The phase of each voice is continuous across notes,
    computed in closed form per note; a harmonic at or above the Nyquist frequency is
    left out of the notes where it would alias. Samples are processed in blocks, which
    bounds the memory the temporaries take for long clips.
    """
    midi = np.atleast_2d(midi)
    seg_len = np.diff(np.minimum(np.append(onsets, n_samples), n_samples))
    seg_all = np.repeat(np.arange(len(onsets)), seg_len)
    note_hz = _midi_to_hz(midi)  # (n_voices, n_notes)

    # Cycles completed at each onset, so that the phase is continuous.
    per_note = note_hz * seg_len / sr
    if vibrato:
        # f(t) = f0 (1 + c sin(w t)), a first-order 2 ** (vibrato / 12 * sin(w t)),
        # integrated in closed form: cycles = f0 (t - c / w cos(w t)) + const.
        w = 2 * np.pi * 5.5
        c = vibrato / 12.0 * np.log(2.0)
        cos_on = np.cos(w * onsets / sr)
        depth = note_hz * c / w
        per_note = per_note - depth * (np.cos(w * (onsets + seg_len) / sr) - cos_on)
    start = np.cumsum(per_note, axis=1) - per_note
    start -= np.floor(start)
    if vibrato:
        start += depth * cos_on
        depth32 = depth.astype(np.float32)
    start32 = start.astype(np.float32)
    hz32 = note_hz.astype(np.float32)

    # Per-note gains only for the harmonics that alias on some note.
    h = np.arange(1, len(harmonics) + 1)[:, None]
    gains = []
    for hz in note_hz:
        keep = h * hz < sr / 2.0
        gains.append(
            [float(a) if k.all() else (a * k).astype(np.float32) for a, k in zip(harmonics, keep)]
        )

    gate_s = (gate / sr).astype(np.float32)
    amp32 = amp.astype(np.float32)
    out = np.empty(n_samples, dtype=np.float32)
    for lo in range(0, n_samples, _BLOCK):
        hi = min(lo + _BLOCK, n_samples)
        seg = seg_all[lo:hi]
        since_s = (np.arange(lo, hi) - onsets[seg]).astype(np.float32) / np.float32(sr)
        release = np.maximum(since_s - gate_s[seg], np.float32(0.0))
        env = (1.0 - np.exp(since_s * np.float32(-1.0 / attack))) * np.exp(
            since_s * np.float32(-1.0 / decay) + release * np.float32(-1.0 / 0.03)
        )
        env *= amp32[seg]
        if vibrato:
            t = np.arange(lo, hi, dtype=np.float32) / np.float32(sr)
            cos_t = np.cos(np.float32(w) * t)
        acc = np.zeros(hi - lo, dtype=np.float32)
        for v in range(len(note_hz)):
            cycles = start32[v][seg] + hz32[v][seg] * since_s
            if vibrato:
                cycles -= depth32[v][seg] * cos_t
            acc += _harmonic_sum(np.float32(2 * np.pi) * cycles, gains[v], seg)
        out[lo:hi] = env * acc
    return out


def _place_hits(out, positions, velocities, sample):
    """Add ``velocity * sample`` into ``out`` at each position (hits are sparse)."""
    n = out.size
    for p, v in zip(positions, velocities):
        m = min(sample.size, n - p)
        out[p : p + m] += np.float32(v) * sample[:m]


def _render_track(artist, rng, n_samples, sr):
    """Render one clip; return ``(waveform, bpm)``."""
    lo, hi = artist["tempo"]
    bpm = float(rng.uniform(lo, hi))

    def jitter():
        return float(np.exp(rng.normal(0.0, _TRACK_SPREAD)))

    beat = 60.0 / bpm
    scale = np.array(_SCALES[artist["scale"]])
    n_deg = scale.size
    key = int(rng.integers(-6, 6))
    tonic = round(artist["register"]) + key

    def degree_to_midi(deg):
        deg = np.asarray(deg)
        return tonic + scale[deg % n_deg] + 12 * (deg // n_deg)

    # Melody: a random walk on the scale, one step every 1/density beats.
    step = beat / artist["density"]
    n_steps = int(np.ceil(n_samples / sr / step)) + 1
    k = np.arange(n_steps)
    swing = artist["swing"] if artist["density"] >= 2 else 0.0
    onsets = np.round((k * step + (k % 2) * swing * step) * sr).astype(int)
    walk = np.cumsum(rng.choice([-2, -1, -1, 0, 1, 1, 2], size=n_steps))
    walk = np.abs((walk + n_deg) % (4 * n_deg) - 2 * n_deg) - n_deg  # reflect in ±1 octave
    amp = rng.uniform(0.7, 1.0, n_steps) * (rng.random(n_steps) >= artist["rest"])
    gate = np.full(n_steps, artist["legato"] * step * jitter() * sr)
    rolloff = artist["rolloff"] * jitter()
    h = np.arange(1, _N_HARMONICS + 1)
    harm = h**-rolloff * np.where(h % 2 == 0, artist["even"], 1.0)
    melody = _render_voice(
        onsets,
        degree_to_midi(walk),
        amp,
        gate,
        n_samples,
        sr,
        harmonics=harm,
        attack=artist["attack"] * jitter(),
        decay=artist["decay"] * jitter(),
        vibrato=artist["vibrato"],
    )
    drive = artist["drive"] * jitter()
    if drive > 0.05:
        melody = np.tanh(drive * _rms_normalise(melody)) / np.tanh(drive)

    # Chords: one scale degree per bar (I, ii, IV, V, vi); bass on every beat, pad held.
    bar = 4 * beat
    n_bars = int(np.ceil(n_samples / sr / bar)) + 1
    roots = rng.choice([0, 1, 3, 4, 5], size=n_bars)
    roots[0] = 0
    n_beats = 4 * n_bars
    beat_onsets = np.round(np.arange(n_beats) * beat * sr).astype(int)
    bass = _render_voice(
        beat_onsets,
        degree_to_midi(np.repeat(roots, 4)) - 24,
        rng.uniform(0.7, 1.0, n_beats),
        np.full(n_beats, 0.8 * beat * sr),
        n_samples,
        sr,
        harmonics=np.array([1.0, 0.5, 0.25, 0.12]),
        attack=0.005,
        decay=0.4,
    )
    bar_onsets = np.round(np.arange(n_bars) * bar * sr).astype(int)
    pad = _render_voice(
        bar_onsets,
        np.stack([degree_to_midi(roots + third) - 12 for third in (0, 2, 4)]),
        np.ones(n_bars),
        np.full(n_bars, bar * sr),
        n_samples,
        sr,
        harmonics=np.array([1.0, 0.3, 0.1]),
        attack=0.3,
        decay=8.0,
    )
    drums = _render_drums(artist, rng, bpm, n_samples, sr)

    levels = [lvl * jitter() for lvl in artist["levels"]]
    mix = sum(
        level * _rms_normalise(part) for level, part in zip(levels, (drums, melody, bass, pad))
    )

    # Recording: a random low-pass tilt, background noise, and a random gain.
    cutoff = min(float(np.exp(rng.uniform(np.log(1500.0), np.log(7500.0)))), 0.45 * sr)
    b, a = signal.butter(1, cutoff, fs=sr)
    mix = 0.5 * mix + 0.5 * signal.lfilter(b, a, mix)
    noise = rng.standard_normal(n_samples, dtype=np.float32)
    pole = rng.uniform(0.0, 0.95)
    noise = _rms_normalise(signal.lfilter([1.0], [1.0, -pole], noise))
    snr_db = rng.uniform(*_SNR_DB)
    mix = _rms_normalise(mix) + 10.0 ** (-snr_db / 20.0) * noise
    peak = np.max(np.abs(mix))
    gain = 10.0 ** (rng.uniform(*_GAIN_DB) / 20.0)
    return (gain / peak * mix).astype(np.float32), bpm


@validate_params(
    {
        "n_tracks": [Interval(Integral, 1, None, closed="left")],
        "n_genres": [Interval(Integral, 1, None, closed="left")],
        "n_artists_per_genre": [Interval(Integral, 1, None, closed="left")],
        "duration": [Interval(Real, 0, None, closed="neither")],
        "sr": [Interval(Integral, 1000, None, closed="left")],
        "random_state": ["random_state"],
        "return_X_y": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def make_tracks(
    n_tracks=200,
    *,
    n_genres=4,
    n_artists_per_genre=3,
    duration=10.0,
    sr=16000,
    random_state=None,
    return_X_y=False,
):
    """Synthesize music clips labelled with a genre and an artist.

    Each genre has its own tempo range, drum pattern, swing, scale, note density and
    timbre; each artist leans somewhat towards another genre of the collection and varies
    the result (timbre, tempo offset, register, drum pattern); each track draws its own
    tempo, key, melody, gain, recording colour and background noise, so that recognising
    the genre is possible but not trivial. The first eight
    genres have names (``"rock"``, ``"techno"``, ``"jazz"``, ``"ambient"``, ``"folk"``,
    ``"hiphop"``, ``"metal"``, ``"reggae"``); further ones are generated
    (``"genre_08"``, ...). The ``DESCR`` field states how well an MFCC-statistics
    nearest-neighbour baseline does on the default settings.

    Parameters
    ----------
    n_tracks : int, default=200
        Number of clips. Genres are as balanced as possible (their counts differ by at
        most one), and so are the artists within a genre.

    n_genres : int, default=4
        Number of genres.

    n_artists_per_genre : int, default=3
        Number of artists in each genre.

    duration : float, default=10.0
        Length of every clip in seconds.

    sr : int, default=16000
        Sampling rate in Hz.

    random_state : int, RandomState instance or None, default=None
        Determines the artists and the tracks. Pass an int for identical output across
        calls.

    return_X_y : bool, default=False
        If True, return ``(data, genre)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_tracks, n_samples), dtype float32
            The waveforms, ``n_samples = round(duration * sr)``, peak at most 1.
        genre : ndarray of shape (n_tracks,), dtype str
            Genre name of each track.
        artist : ndarray of shape (n_tracks,), dtype str
            Artist name of each track (``"<genre>_artist<k>"``).
        tempo : ndarray of shape (n_tracks,), dtype float64
            Tempo of each track in beats per minute.
        genre_names : list of str
            The ``n_genres`` genre names.
        artist_names : list of str
            The ``n_genres * n_artists_per_genre`` artist names.
        sr : int
            Sampling rate in Hz.
        DESCR : str
            Description of the data set and of its calibration.

    (data, genre) : tuple if ``return_X_y`` is True
        The waveforms and the genre names.

    See Also
    --------
    load_audio_folder : Load a folder-per-label collection of audio files.

    Examples
    --------
    >>> from sklearn_music.datasets import make_tracks
    >>> tracks = make_tracks(8, duration=1.0, random_state=0)
    >>> tracks.data.shape, tracks.data.dtype
    ((8, 16000), dtype('float32'))
    >>> tracks.genre_names
    ['rock', 'techno', 'jazz', 'ambient']
    >>> sorted(set(tracks.genre.tolist()))
    ['ambient', 'jazz', 'rock', 'techno']
    >>> X, y = make_tracks(4, duration=0.5, random_state=0, return_X_y=True)
    >>> X.shape, y.shape
    ((4, 8000), (4,))
    """
    n_samples = int(round(duration * sr))
    if n_samples < 1:
        raise ValueError(f"duration={duration} at sr={sr} gives no sample; pass a longer duration.")
    rng = np.random.default_rng(check_random_state(random_state).randint(2**31 - 1))

    specs = [_genre_spec(g) for g in range(n_genres)]
    genre_names = [name for name, _ in specs]
    artists, artist_names = [], []
    for g, (name, spec) in enumerate(specs):
        influences = [other for h, (_, other) in enumerate(specs) if h != g]
        for a in range(n_artists_per_genre):
            artists.append(_make_artist(spec, rng, _ARTIST_SPREAD, influences))
            artist_names.append(f"{name}_artist{a}")

    # Balanced labels: track i gets genre i % n_genres and, within the genre, artists in
    # turn; then the order is shuffled.
    i = np.arange(n_tracks)
    genre_idx = i % n_genres
    artist_idx = genre_idx * n_artists_per_genre + (i // n_genres) % n_artists_per_genre
    order = rng.permutation(n_tracks)
    genre_idx, artist_idx = genre_idx[order], artist_idx[order]

    track_seeds = rng.integers(2**63 - 1, size=n_tracks)
    data = np.empty((n_tracks, n_samples), dtype=np.float32)
    tempo = np.empty(n_tracks)
    for t in range(n_tracks):
        data[t], tempo[t] = _render_track(
            artists[artist_idx[t]], np.random.default_rng(track_seeds[t]), n_samples, sr
        )

    genre = np.array(genre_names)[genre_idx]
    artist = np.array(artist_names)[artist_idx]
    if return_X_y:
        return data, genre
    descr = _DESCR.format(
        named=", ".join(f"``{n}``" for n in _GENRES),
        gain_lo=_GAIN_DB[0],
        gain_hi=_GAIN_DB[1],
        snr_lo=_SNR_DB[0],
        snr_hi=_SNR_DB[1],
        influence=_INFLUENCE,
        **_CALIBRATION,
    )
    return Bunch(
        data=data,
        genre=genre,
        artist=artist,
        tempo=tempo,
        genre_names=genre_names,
        artist_names=artist_names,
        sr=sr,
        DESCR=descr,
    )
