"""Cutting tracks into fixed-length clips with their group ids, for cross-validation.

Clips of one track are alike; a split that puts clips of the same track on both sides
measures how well a model recognises that track, not how well it generalises.
:func:`make_clips` returns, with the clips, the id of the track (or of a coarser group
such as the album) that each clip comes from, for
:class:`~sklearn.model_selection.GroupKFold` and the other group splitters.

It is a function, not a transformer: a transformer returns one row per input row, while
cutting changes the number of samples (and ``y`` with it), which a scikit-learn
``transform`` cannot do. It sits beside the mel front end and reads tracks the same
way (:func:`~sklearn_music.load_audio`).
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_consistent_length

from ._frontend import _as_tracks
from .io import AudioLoadError, load_audio
from .utils._sklearn_compat import Interval, StrOptions, validate_params

__all__ = ["make_clips"]


def _track_waveform(index, track, sr):
    """The mono float32 waveform of track ``index``; errors name the track."""
    try:
        return load_audio(track, sr=sr)
    except AudioLoadError as exc:
        raise AudioLoadError(f"track {index}: {exc}") from None


def _cut(y, *, clip, hop, min_tail, min_whole, short):
    """The clips of one waveform, as a list of 1-D arrays (padded for ``short="pad"``).

    Full clips start at ``0, hop, 2 * hop, ...``; the audio after the last full clip
    (or the whole track when it is shorter than a clip) is one more, partial, piece,
    kept under ``short="pad"`` (zero-padded) and ``"keep"`` (as it is) when it is at
    least ``min_tail`` (``min_whole`` for a track shorter than a clip) samples long.
    """
    n = y.size
    clips = [y[start : start + clip] for start in range(0, n - clip + 1, hop)]
    covered = (len(clips) - 1) * hop + clip if clips else 0
    if short == "drop" or covered >= n:
        return clips
    start = len(clips) * hop
    piece = y[start:]
    if piece.size < (min_tail if clips else min_whole) or piece.size == 0:
        return clips
    if short == "pad":
        piece = np.pad(piece, (0, clip - piece.size))
    return clips + [piece]


@validate_params(
    {
        "X": ["array-like"],
        "y": ["array-like", None],
        "groups": ["array-like", None],
        "clip_duration": [Interval(Real, 0, None, closed="neither")],
        "hop": [Interval(Real, 0, None, closed="neither"), None],
        "sr": [Interval(Integral, 1, None, closed="left")],
        "min_duration": [Interval(Real, 0, None, closed="left"), None],
        "short": [StrOptions({"pad", "drop", "keep"})],
    },
    prefer_skip_nested_validation=True,
)
def make_clips(
    X,
    y=None,
    *,
    groups=None,
    clip_duration=30.0,
    hop=None,
    sr=16000,
    min_duration=None,
    short="pad",
):
    """Cut tracks into fixed-length clips, with the group id of every clip.

    Every track is read once with :func:`~sklearn_music.load_audio` (mono at ``sr``;
    arrays are taken to be at ``sr``) and cut into clips of
    ``clip_duration`` seconds, one every ``hop`` seconds. Each clip keeps its track's
    label and group, so that ``GroupKFold(...).split(clips, y_clips, groups)`` never
    puts clips of one track (or one album) in both the training and the test part.

    Parameters
    ----------
    X : sequence of tracks or array-like of shape (n_tracks, n_samples)
        Paths, file-like objects or 1-D waveforms at ``sr`` (a list, a
        :class:`pandas.Series` or a one-column :class:`pandas.DataFrame`), or a 2-D
        array whose rows are waveforms.
    y : array-like of shape (n_tracks,) or (n_tracks, n_outputs), default=None
        Labels of the tracks, repeated for their clips.
    groups : array-like of shape (n_tracks,), default=None
        Group of every track (an album or an artist, for a stricter split); ``None``
        makes every track its own group, numbered by its position in ``X``.
    clip_duration : float, default=30.0
        Length of a clip in seconds (``round(clip_duration * sr)`` samples).
    hop : float, default=None
        Seconds between the starts of successive clips of a track; ``None`` means
        ``clip_duration`` (clips side by side). A smaller hop gives overlapping clips.
    sr : int, default=16000
        Sampling rate in Hz at which files are read; waveforms in ``X`` are taken to
        be at this rate already.
    min_duration : float, default=None
        The shortest partial piece kept as a clip, in seconds. A partial piece is
        the audio after a track's last full clip, or the whole of a track shorter
        than a clip. ``None`` keeps a remainder of at least half a clip and a short
        track of any length, so that every track gives at least one clip.
    short : {"pad", "drop", "keep"}, default="pad"
        What becomes of a partial piece:

        - ``"pad"``: it is padded with zeros (silence) to a full clip;
        - ``"drop"``: it is dropped, so a track shorter than a clip gives no clip;
        - ``"keep"``: it is kept at its own length, and ``clips`` is a list.

    Returns
    -------
    clips : ndarray of shape (n_clips, n_clip_samples) or list of ndarray
        The float32 waveforms, track after track, ready for
        :class:`~sklearn_music.MelSpectrogramTransformer` (at the same ``sr``). A
        list of 1-D arrays with ``short="keep"``.
    y_clips : ndarray of shape (n_clips,) or (n_clips, n_outputs) or None
        The label of every clip's track; ``None`` when ``y`` is ``None``.
    groups : ndarray of shape (n_clips,)
        The group of every clip's track: ``groups[i]`` of its track, or its track's
        position in ``X``.

    Raises
    ------
    ValueError
        When no track gives a clip.
    AudioLoadError
        When a track cannot be read; the message names its index and file.

    See Also
    --------
    sklearn.model_selection.GroupKFold : Splits that keep each group on one side.
    sklearn_music.MelSpectrogramTransformer : Its ``offset``, ``duration`` and
        ``short_tracks`` take one excerpt per track instead.

    Notes
    -----
    The clips are held in memory: ``4 * sr`` bytes per second of audio (64 kB at
    16 kHz), about 1.9 GB for 1,000 tracks of 30 s.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GroupKFold
    >>> from sklearn_music import make_clips
    >>> sr = 1000
    >>> tracks = [np.ones(3 * sr), np.ones(int(4.5 * sr)), np.ones(sr // 2)]
    >>> clips, y_clips, groups = make_clips(
    ...     tracks, ["rock", "jazz", "pop"], clip_duration=2.0, sr=sr
    ... )
    >>> clips.shape
    (5, 2000)
    >>> groups
    array([0, 0, 1, 1, 2])
    >>> y_clips.tolist()
    ['rock', 'rock', 'jazz', 'jazz', 'pop']
    >>> for train, test in GroupKFold(n_splits=3).split(clips, y_clips, groups):
    ...     assert set(groups[train]).isdisjoint(groups[test])
    """
    tracks = _as_tracks(X)
    check_consistent_length(tracks, y, groups)
    clip = int(round(clip_duration * sr))
    hop_samples = clip if hop is None else int(round(hop * sr))
    if clip < 1 or hop_samples < 1:
        raise ValueError(
            f"clip_duration={clip_duration} s and hop={hop} s must each be at least one "
            f"sample at sr={sr}"
        )
    if min_duration is None:
        min_tail, min_whole = (clip + 1) // 2, 1
    else:
        min_tail = min_whole = max(int(round(min_duration * sr)), 1)

    clips, track_of_clip = [], []
    for i, track in enumerate(tracks):
        y_wave = _track_waveform(i, track, sr)
        cut = _cut(
            y_wave, clip=clip, hop=hop_samples, min_tail=min_tail, min_whole=min_whole, short=short
        )
        clips.extend(cut)
        track_of_clip.extend([i] * len(cut))
    if not clips:
        raise ValueError(
            f"no track of X gives a clip: all {len(tracks)} tracks are shorter than "
            f"clip_duration={clip_duration} s with short={short!r} (or than "
            f"min_duration={min_duration} s); use short='pad' or shorter clips"
        )

    track_of_clip = np.asarray(track_of_clip, dtype=np.intp)
    y_clips = None if y is None else np.asarray(y)[track_of_clip]
    groups_out = track_of_clip if groups is None else np.asarray(groups)[track_of_clip]
    if short != "keep":
        clips = np.stack(clips).astype(np.float32, copy=False)
    else:
        clips = [c.astype(np.float32, copy=False) for c in clips]
    return clips, y_clips, groups_out
