"""Instances with tiny parameters and expected check failures for the common tests.

Each estimator has its own block below; ``tests/test_common.py`` runs
:func:`sklearn.utils.estimator_checks.parametrize_with_checks` on every estimator
that :func:`~sklearn_music.utils.discovery.all_estimators` finds, built with the
tiny parameters given here, and marks the listed checks as expected failures
(strictly: a listed check that passes fails the run, so the list stays honest).
"""

# --- MelSpectrogramTransformer -------------------------------------------------
_MEL_PARAMS = {}
_MEL_XFAIL = {}

# --- MFCCStatistics (the baseline) ---------------------------------------------
_BASELINE_PARAMS = {}
_BASELINE_XFAIL = {}

# --- ConvEmbedder --------------------------------------------------------------
_EMBEDDER_PARAMS = {}
_EMBEDDER_XFAIL = {}

# --- NearestTracks -------------------------------------------------------------
_NEIGHBORS_PARAMS = {}
_NEIGHBORS_XFAIL = {}

# --- ImplicitFactors -----------------------------------------------------------
_FACTORS_PARAMS = {}
_FACTORS_XFAIL = {}

# name -> (constructor keyword arguments, {check name: reason it is expected to fail})
TEST_PARAMS = {
    "MelSpectrogramTransformer": (_MEL_PARAMS, _MEL_XFAIL),
    "MFCCStatistics": (_BASELINE_PARAMS, _BASELINE_XFAIL),
    "ConvEmbedder": (_EMBEDDER_PARAMS, _EMBEDDER_XFAIL),
    "NearestTracks": (_NEIGHBORS_PARAMS, _NEIGHBORS_XFAIL),
    "ImplicitFactors": (_FACTORS_PARAMS, _FACTORS_XFAIL),
}
