"""Rendering of one synthesized track from its artist description (:func:`make_tracks`).

Drums are decaying sines and noise bursts; melody, bass and chord pad are harmonic
voices with envelopes. Rendering is vectorised with numpy: no Python loop runs per
sample or per note (only per drum hit, which adds one short slice).
"""

import numpy as np
from scipy import signal

from ._genres import _GAIN_DB, _SCALES, _SNR_DB, _TRACK_SPREAD

_N_HARMONICS = 10
_BLOCK = 1 << 16  # samples rendered at a time: bounds the temporaries of long clips


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

    melody = _render_melody(artist, rng, jitter, degree_to_midi, n_deg, beat, n_samples, sr)
    bass, pad = _render_chords(rng, degree_to_midi, beat, n_samples, sr)
    drums = _render_drums(artist, rng, bpm, n_samples, sr)

    levels = [lvl * jitter() for lvl in artist["levels"]]
    mix = sum(
        level * _rms_normalise(part) for level, part in zip(levels, (drums, melody, bass, pad))
    )

    return _record(mix, rng, n_samples, sr), bpm


def _render_melody(artist, rng, jitter, degree_to_midi, n_deg, beat, n_samples, sr):
    """The lead voice: a random walk on the scale, one step every 1/density beats."""
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

    return melody


def _render_chords(rng, degree_to_midi, beat, n_samples, sr):
    """Bass on every beat and a held pad: one scale degree per bar (I, ii, IV, V, vi)."""
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
    return bass, pad


def _record(mix, rng, n_samples, sr):
    """A random low-pass tilt, background noise and a random peak gain."""
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
    return (gain / peak * mix).astype(np.float32)
