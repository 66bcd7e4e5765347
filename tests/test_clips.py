"""make_clips: clips and group ids for cross-validation, short tracks, paths and arrays."""

import io

import numpy as np
import pytest
import soundfile as sf
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeClassifier

from sklearn_music import MelSpectrogramTransformer, MFCCStatistics, make_clips
from sklearn_music.io import AudioLoadError
from sklearn_music.utils._sklearn_compat import InvalidParameterError

SR = 1000  # a low rate keeps the arrays small; load_audio accepts 1 kHz


def _ramp(seconds, start=0.0):
    """A waveform whose sample k is ``start + k`` (scaled), so a clip shows its origin."""
    n = int(round(seconds * SR))
    return ((start + np.arange(n)) / 1e6).astype(np.float32)


def _origin(clip):
    """Sample index of a ramp clip's first sample (inverse of ``_ramp``)."""
    return int(round(float(clip[0]) * 1e6))


def test_clips_are_the_track_cut_side_by_side():
    y = _ramp(6.5)
    clips, y_clips, groups = make_clips([y], ["a"], clip_duration=2.0, sr=SR)
    # 3 full clips, the 0.5-s remainder is under half a clip: dropped
    assert clips.shape == (3, 2000) and clips.dtype == np.float32
    for j, clip in enumerate(clips):
        np.testing.assert_array_equal(clip, y[2000 * j : 2000 * (j + 1)])
    assert y_clips.tolist() == ["a"] * 3 and groups.tolist() == [0, 0, 0]


def test_hop_gives_overlapping_clips_and_a_padded_remainder():
    y = _ramp(5.0)
    clips, _, groups = make_clips([y], clip_duration=2.0, hop=1.5, sr=SR)
    # full clips at 0, 1.5, 3.0 s (ending at 5.0 s): nothing left over
    assert [_origin(c) for c in clips] == [0, 1500, 3000]
    clips, _, _ = make_clips([_ramp(5.6)], clip_duration=2.0, hop=1.5, sr=SR)
    # a remainder 4.5 .. 5.6 s (1.1 s >= half a clip), padded with zeros
    assert [_origin(c) for c in clips] == [0, 1500, 3000, 4500]
    np.testing.assert_array_equal(clips[3, :1100], _ramp(1.1, start=4500))
    assert np.all(clips[3, 1100:] == 0)


@pytest.mark.parametrize(
    "short, min_duration, n_clips, lengths",
    [
        ("pad", None, [2, 1], [2000, 2000, 2000]),  # remainder 1 s kept, short track kept
        ("drop", None, [1, 0], [2000]),
        ("keep", None, [2, 1], [2000, 1000, 300]),
        ("pad", 1.5, [1, 0], [2000]),  # both partial pieces under 1.5 s
        ("keep", 0.2, [2, 1], [2000, 1000, 300]),
    ],
)
def test_short_tracks_and_remainders(short, min_duration, n_clips, lengths):
    tracks = [_ramp(3.0), _ramp(0.3)]
    clips, y_clips, groups = make_clips(
        tracks, [7, 8], clip_duration=2.0, sr=SR, short=short, min_duration=min_duration
    )
    assert [int(np.sum(groups == g)) for g in (0, 1)] == n_clips
    assert [len(c) for c in clips] == lengths
    assert y_clips.tolist() == [7] * n_clips[0] + [8] * n_clips[1]
    assert isinstance(clips, list) == (short == "keep")
    if short == "pad" and n_clips[1]:
        np.testing.assert_array_equal(clips[-1][:300], tracks[1])
        assert np.all(clips[-1][300:] == 0)


def test_no_clip_at_all_is_an_error():
    with pytest.raises(ValueError, match=r"no track of X gives a clip: all 2 tracks"):
        make_clips([_ramp(0.5), _ramp(1.0)], clip_duration=2.0, sr=SR, short="drop")


def test_groups_map_tracks_to_albums():
    tracks = [_ramp(4.0), _ramp(2.0), _ramp(4.0)]
    _, _, groups = make_clips(tracks, groups=["x", "y", "x"], clip_duration=2.0, sr=SR)
    assert groups.tolist() == ["x", "x", "y", "x", "x"]


def test_group_kfold_never_shares_a_track_between_train_and_test(rng):
    lengths = rng.uniform(0.5, 9.0, size=12)
    tracks = [rng.standard_normal(int(s * SR)).astype(np.float32) * 0.1 for s in lengths]
    labels = np.arange(12) % 3
    clips, y_clips, groups = make_clips(tracks, labels, clip_duration=2.0, hop=1.0, sr=SR)
    assert len(clips) > 12
    # every clip is a piece of its own track (no mix-up of the group ids)
    for clip, g in zip(clips, groups):
        pieces = [tracks[g][s : s + clip.size] for s in range(0, len(tracks[g]), 1000)]
        assert any(np.array_equal(p, clip[: p.size]) and not np.any(clip[p.size :]) for p in pieces)
    n_test_clips = 0
    for train, test in GroupKFold(n_splits=4).split(clips, y_clips, groups):
        assert set(groups[train]).isdisjoint(groups[test])
        n_test_clips += len(test)
        np.testing.assert_array_equal(y_clips[test], labels[groups[test]])
    assert n_test_clips == len(clips)


def test_paths_file_likes_and_arrays_give_the_same_clips(tmp_path, rng):
    waves = [rng.uniform(-0.5, 0.5, int(s * 16000)).astype(np.float32) for s in (2.5, 0.7)]
    paths = []
    for i, y in enumerate(waves):
        paths.append(tmp_path / f"t{i}.wav")
        sf.write(paths[-1], y, 16000, subtype="FLOAT")
    expected, _, groups = make_clips(waves, clip_duration=1.0)
    assert expected.shape == (4, 16000) and groups.tolist() == [0, 0, 0, 1]  # 0.5-s remainder kept
    for X in (
        paths,
        [str(p) for p in paths],
        [io.BytesIO(p.read_bytes()) for p in paths],
    ):
        clips, _, g = make_clips(X, clip_duration=1.0)
        np.testing.assert_array_equal(clips, expected)
        np.testing.assert_array_equal(g, groups)
    # a 2-D array of equal-length waveforms: one row per track
    clips, _, g = make_clips(np.stack([waves[0][:32000], waves[0][:32000]]), clip_duration=1.0)
    assert clips.shape == (4, 16000) and g.tolist() == [0, 0, 1, 1]


def test_files_are_resampled_to_sr(tmp_path):
    t = np.arange(22050 * 2) / 22050
    sf.write(tmp_path / "a.flac", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22050)
    clips, _, _ = make_clips([tmp_path / "a.flac"], clip_duration=1.0, sr=16000)
    assert clips.shape == (2, 16000)


def test_clips_feed_a_cross_validated_pipeline(rng):
    # two "genres": low and high tones; clips of a track must not leak into its test fold
    tracks, labels = [], []
    t = np.arange(3 * 16000) / 16000
    for i in range(8):
        freq = 300.0 if i % 2 else 2000.0
        tracks.append(0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size))
        labels.append(i % 2)
    clips, y_clips, groups = make_clips(tracks, labels, clip_duration=1.0)
    pipe = make_pipeline(MFCCStatistics(n_mfcc=8), DecisionTreeClassifier(random_state=0))
    scores = cross_val_score(pipe, clips, y_clips, groups=groups, cv=GroupKFold(n_splits=4))
    assert scores.min() == 1.0
    assert MelSpectrogramTransformer(n_mels=16).fit_transform(clips).shape == (24, 16, 32)


def test_errors_name_the_track_and_the_parameter(tmp_path):
    with pytest.raises(AudioLoadError, match=r"track 1: '.*gone\.wav': file not found"):
        make_clips([_ramp(1.0), tmp_path / "gone.wav"], sr=SR)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        make_clips([_ramp(1.0), _ramp(1.0)], [0], sr=SR)
    with pytest.raises(InvalidParameterError, match="'short' parameter"):
        make_clips([_ramp(1.0)], short="trim", sr=SR)
    with pytest.raises(InvalidParameterError, match="'clip_duration' parameter"):
        make_clips([_ramp(1.0)], clip_duration=0, sr=SR)
    with pytest.raises(ValueError, match=r"clip_duration=0.0001 s and hop=None s"):
        make_clips([_ramp(1.0)], clip_duration=1e-4, sr=SR)
