"""scikit-learn's estimator checks on every estimator of the package."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_music._hnsw import hnsw_available
from sklearn_music.utils._test_common import EXTRA_INSTANCES, TEST_PARAMS
from sklearn_music.utils.discovery import all_estimators


def _tested_estimators():
    for name, cls in all_estimators():
        params, _ = TEST_PARAMS.get(name, ({}, {}))
        yield cls(**params)
        for extra in EXTRA_INSTANCES.get(name, []):
            if extra.get("algorithm") == "hnsw" and not hnsw_available():
                continue
            yield cls(**extra)


def _expected_failed_checks(estimator):
    return TEST_PARAMS.get(type(estimator).__name__, ({}, {}))[1]


@parametrize_with_checks(
    list(_tested_estimators()),
    expected_failed_checks=_expected_failed_checks,
    xfail_strict=True,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_every_estimator_is_discovered():
    names = {name for name, _ in all_estimators()}
    assert {"MelSpectrogramTransformer", "ConvEmbedder", "NearestTracks"} <= names
