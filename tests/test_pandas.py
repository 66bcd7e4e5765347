"""pandas through the Pipeline: a column of paths as X, and set_output("pandas")."""

import numpy as np
import pandas as pd
import pytest
import sklearn
import soundfile as sf
from sklearn.pipeline import make_pipeline

from sklearn_music import ConvEmbedder, MelSpectrogramTransformer, MFCCStatistics, make_clips

SR = 16000
TINY = dict(
    embedding_dim=4,
    n_filters=4,
    hidden_units=(8,),
    patch_frames=16,
    patch_hop=8,
    patches_per_track=2,
    max_epochs=2,
    random_state=0,
)


@pytest.fixture(scope="module")
def music_df(tmp_path_factory):
    """Six short files of two tones, in a DataFrame with a labelled, shuffled index."""
    folder = tmp_path_factory.mktemp("music")
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    rows = []
    for i in range(6):
        freq = 300.0 if i % 2 else 1500.0
        y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
        path = folder / f"track{i}.wav"
        sf.write(path, y.astype(np.float32), SR, subtype="FLOAT")
        rows.append({"path": str(path), "genre": "low" if i % 2 else "high"})
    return pd.DataFrame(rows, index=[f"id{i}" for i in (5, 3, 0, 1, 4, 2)])


def _mel():
    return MelSpectrogramTransformer(n_mels=16)


def test_one_column_dataframe_and_series_of_paths(music_df):
    expected = _mel().fit_transform(music_df["path"].tolist())
    for X in (music_df[["path"]], music_df["path"], music_df[["path"]].to_numpy()):
        np.testing.assert_array_equal(_mel().fit_transform(X), expected)
    stats = MFCCStatistics(n_mfcc=5)
    np.testing.assert_array_equal(
        stats.fit_transform(music_df[["path"]]), stats.transform(music_df["path"].tolist())
    )


def test_several_columns_of_paths_is_an_error_naming_them(music_df):
    X = music_df[["path", "genre"]]
    with pytest.raises(ValueError, match=r"X has 2 columns \(\['path', 'genre'\]\)"):
        _mel().fit(X)


def test_pipeline_set_output_pandas_gives_named_embeddings(music_df):
    X, y = music_df[["path"]], music_df["genre"]
    plain = make_pipeline(_mel(), ConvEmbedder(**TINY)).fit(X, y)
    pipe = make_pipeline(_mel(), ConvEmbedder(**TINY)).set_output(transform="pandas")
    out = pipe.fit(X, y).transform(X)
    assert isinstance(out, pd.DataFrame)
    assert out.columns.tolist() == pipe[-1].get_feature_names_out().tolist()
    assert out.columns.tolist() == [f"convembedder{i}" for i in range(4)]
    # the spectrograms carry no index: rows in the order of X, numbered 0 .. n - 1
    assert out.index.tolist() == list(range(len(X)))
    np.testing.assert_array_equal(out.to_numpy(), plain.transform(X))
    assert out.set_axis(X.index).loc["id0"].shape == (4,)
    # the spectrogram step itself still gives an array
    assert isinstance(pipe[0].transform(X), np.ndarray)
    # fit_transform agrees with transform after fit
    again = make_pipeline(_mel(), ConvEmbedder(**TINY)).set_output(transform="pandas")
    np.testing.assert_array_equal(again.fit_transform(X, y).to_numpy(), out.to_numpy())


def test_global_transform_output_pandas(music_df):
    X, y = music_df[["path"]], music_df["genre"]
    with sklearn.config_context(transform_output="pandas"):
        S = _mel().fit_transform(X)
        out = make_pipeline(_mel(), ConvEmbedder(**TINY)).fit(X, y).transform(X)
    assert isinstance(S, np.ndarray) and S.shape[0] == len(X)
    assert isinstance(out, pd.DataFrame) and out.shape == (len(X), 4)


def test_mfcc_statistics_keeps_the_input_index(music_df):
    X = music_df[["path"]]
    stats = MFCCStatistics(n_mfcc=5).set_output(transform="pandas")
    out = stats.fit_transform(X)
    assert isinstance(out, pd.DataFrame)
    assert out.index.tolist() == X.index.tolist()
    assert out.columns.tolist() == stats.get_feature_names_out().tolist()


def test_make_clips_takes_a_dataframe_column_and_series_labels(music_df):
    clips, y_clips, groups = make_clips(
        music_df[["path"]], music_df["genre"], groups=music_df.index, clip_duration=0.5
    )
    assert clips.shape == (12, SR // 2)
    assert groups.tolist() == np.repeat(music_df.index.to_numpy(), 2).tolist()
    assert y_clips.tolist() == np.repeat(music_df["genre"].to_numpy(), 2).tolist()
