"""Instances with tiny parameters and expected check failures for the common tests.

Each estimator has its own block below; ``tests/test_common.py`` runs
:func:`sklearn.utils.estimator_checks.parametrize_with_checks` on every estimator
that :func:`~sklearn_music.utils.discovery.all_estimators` finds, built with the
tiny parameters given here, and marks the listed checks as expected failures
(strictly: a listed check that passes fails the run, so the list stays honest).
"""

# --- MelSpectrogramTransformer -------------------------------------------------
# the checks' 2-D X is read as rows of short waveforms; a tiny FFT keeps them fast
_MEL_PARAMS = {"sr": 8000, "n_fft": 16, "hop_length": 4, "n_mels": 4}
_FREE_LENGTH = (
    "stateless transformer of waveforms: the number of samples of a track is not a "
    "fixed feature count (tracks of any length, and paths, are valid input), so fit "
    "records no n_features_in_ and transform accepts any length"
)
_MEL_XFAIL = {
    "check_n_features_in": _FREE_LENGTH,
    "check_n_features_in_after_fitting": _FREE_LENGTH,
}

# --- MFCCStatistics (the baseline) ---------------------------------------------
_BASELINE_PARAMS = {"sr": 8000, "n_mfcc": 3, "n_fft": 16, "hop_length": 4, "n_mels": 4}
_BASELINE_XFAIL = {
    "check_n_features_in": _FREE_LENGTH,
    "check_n_features_in_after_fitting": _FREE_LENGTH,
}

# --- ConvEmbedder --------------------------------------------------------------
# tiny network, one short epoch; the checks' 2-D X is read as single-frame spectra
_EMBEDDER_PARAMS = {
    "embedding_dim": 4,
    "n_filters": 4,
    "hidden_units": (8,),
    "patch_frames": 9,
    "patches_per_track": 1,
    "max_epochs": 2,
    "random_state": 0,
}
_EMBEDDER_XFAIL = {}

# --- MultimodalEmbedder -------------------------------------------------------
# the checks' arrays are read as spectrograms without side inputs (2-D: single-frame
# spectra, as ConvEmbedder reads them); its table input is tested in
# tests/test_multimodal.py
_MULTIMODAL_PARAMS = {
    "embedding_dim": 4,
    "audio_dim": 4,
    "n_filters": 4,
    "hidden_units": (8,),
    "patch_frames": 9,
    "patches_per_track": 1,
    "max_epochs": 2,
    "random_state": 0,
}
_MULTIMODAL_XFAIL = {}

# --- NearestTracks -------------------------------------------------------------
# the checks' data are small, so algorithm="auto" searches exactly ("brute"); the
# approximate index is compared with sklearn's NearestNeighbors in test_neighbors.py
_NEIGHBORS_PARAMS = {"n_neighbors": 3}
_NEIGHBORS_XFAIL = {
    "check_estimators_dtypes": (
        "metric='cosine' (the default) refuses an all-zero track vector, whose cosine "
        "similarity is undefined, as SimilarityStore does; this check's integer casts "
        "of uniform(0, 3) data contain all-zero rows"
    ),
}

# the approximate indexes run the same checks (their results on these small data
# are compared with exact search in test_neighbors.py and test_hnsw.py)
_NEIGHBORS_APPROX = [
    {"n_neighbors": 3, "algorithm": "nndescent", "random_state": 0, "n_jobs": 1},
    {"n_neighbors": 3, "algorithm": "hnsw", "random_state": 0, "n_jobs": 1},
]

# --- ImplicitFactors -----------------------------------------------------------
_FACTORS_PARAMS = {"n_factors": 2, "iterations": 3, "random_state": 0}
_EMPTY_PLAYS = (
    "ImplicitFactors rejects a user row or a track column without any plays (it has "
    "no factors to learn); this check's random data contains such rows or columns"
)
_FACTORS_XFAIL = {
    "check_estimators_dtypes": _EMPTY_PLAYS + " (integer casts of uniform(0, 3) data)",
    "check_estimator_sparse_tag": _EMPTY_PLAYS + " (a sparse random matrix)",
    "check_estimator_sparse_array": _EMPTY_PLAYS + " (a sparse random matrix)",
    "check_estimator_sparse_matrix": _EMPTY_PLAYS + " (a sparse random matrix)",
    "check_fit2d_1sample": _EMPTY_PLAYS + " (a single user leaves track columns empty)",
    "check_fit2d_1feature": _EMPTY_PLAYS + " (a single track leaves user rows empty)",
}

# name -> (constructor keyword arguments, {check name: reason it is expected to fail})
TEST_PARAMS = {
    "MelSpectrogramTransformer": (_MEL_PARAMS, _MEL_XFAIL),
    "MFCCStatistics": (_BASELINE_PARAMS, _BASELINE_XFAIL),
    "ConvEmbedder": (_EMBEDDER_PARAMS, _EMBEDDER_XFAIL),
    "MultimodalEmbedder": (_MULTIMODAL_PARAMS, _MULTIMODAL_XFAIL),
    "NearestTracks": (_NEIGHBORS_PARAMS, _NEIGHBORS_XFAIL),
    "ImplicitFactors": (_FACTORS_PARAMS, _FACTORS_XFAIL),
}

# name -> more constructor keyword arguments, one more instance each (same failures)
EXTRA_INSTANCES = {"NearestTracks": _NEIGHBORS_APPROX}


# --- a tiny fitted-in-a-second pipeline, shared by the persistence, hostile-model
# and serving tests and benchmarks/hostile_files.py ------------------------------
_TINY_MEL = {"sr": 8000, "n_fft": 256, "hop_length": 128, "n_mels": 16}
_TINY_EMBED = {
    "embedding_dim": 8,
    "n_filters": 8,
    "hidden_units": (16,),
    "patch_frames": 16,
    "patches_per_track": 2,
    "batch_size": 8,
    "max_epochs": 1,
    "random_state": 0,
}


def tiny_pipeline(n_tracks=8, *, index=True):
    """An unfitted mel -> embed (-> index) Pipeline with tiny settings, and its data.

    Parameters
    ----------
    n_tracks : int, default=8
        Number of one-second ``make_tracks`` clips at 8 kHz (two genres).
    index : bool, default=True
        End the pipeline with a ``NearestTracks(n_neighbors=3)`` step.

    Returns
    -------
    pipeline : Pipeline
        The unfitted pipeline.
    tracks : Bunch
        The data from :func:`~sklearn_music.datasets.make_tracks`.

    Examples
    --------
    >>> from sklearn_music.utils._test_common import tiny_pipeline
    >>> pipe, tracks = tiny_pipeline(4, index=False)
    >>> [name for name, _ in pipe.steps]
    ['mel', 'embed']
    """
    from sklearn.pipeline import Pipeline

    from .._embedder import ConvEmbedder
    from .._mel import MelSpectrogramTransformer
    from .._neighbors import NearestTracks
    from ..datasets import make_tracks

    tracks = make_tracks(n_tracks, n_genres=2, duration=1.0, sr=8000, random_state=0)
    steps = [
        ("mel", MelSpectrogramTransformer(**_TINY_MEL)),
        ("embed", ConvEmbedder(**_TINY_EMBED)),
    ]
    if index:
        steps.append(("index", NearestTracks(n_neighbors=3, random_state=0)))
    return Pipeline(steps), tracks
