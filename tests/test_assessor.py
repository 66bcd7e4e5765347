"""assessor_report against hand-computed cases, scipy's intervals and sklearn's kappa."""

import json
import math

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score

from sklearn_music._assessor import (
    JUDGMENTS_FORMAT,
    KEY_FORMAT,
    clopper_pearson_interval,
    fleiss_kappa,
    wilson_interval,
)
from sklearn_music.metrics import assessor_report


def _doc(labels, *, assessor="ann", queries=("q.ogg",), mode="single", report="r1"):
    """A judgments document: ``labels[q][r]`` is the judgment of rank r+1 of query q."""
    rows = [
        {
            "item": f"q{qi}-n{r}",
            "query": queries[qi],
            "track": f"t{r}.ogg",
            "rank": r,
            "judgment": j,
        }
        for qi, row in enumerate(labels)
        for r, j in enumerate(row, 1)
    ]
    return {
        "format": JUDGMENTS_FORMAT,
        "report": report,
        "mode": mode,
        "assessor": assessor,
        "judgments": rows,
    }


S, N, U = "similar", "not_similar", "unsure"


@pytest.mark.parametrize("s, n", [(0, 10), (3, 10), (7, 20), (20, 20), (1, 1)])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_intervals_match_scipy(s, n, confidence):
    ref = binomtest(s, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert wilson_interval(s, n, confidence) == pytest.approx((ref.low, ref.high), abs=1e-12)
    ref = binomtest(s, n).proportion_ci(confidence_level=confidence, method="exact")
    got = clopper_pearson_interval(s, n, confidence)
    assert got == pytest.approx((ref.low, ref.high), abs=1e-9)


def test_fleiss_kappa_textbook_example():
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories
    counts = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert fleiss_kappa(counts) == pytest.approx(0.20993, abs=1e-5)
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa([[1, 1, 0], [3, 0, 0]])


def test_precision_per_query_and_overall():
    doc = _doc([[S, S, N, U], [N, N, S, S]], queries=("a.ogg", "b.ogg"))
    rep = assessor_report(doc)
    assert rep["per_query"]["a.ogg"]["precision"] == pytest.approx(2 / 3)
    assert rep["per_query"]["b.ogg"]["precision"] == pytest.approx(2 / 4)
    assert rep["precision"]["n_similar"] == 4 and rep["precision"]["n_judged"] == 7
    assert rep["precision"]["ci"] == pytest.approx(wilson_interval(4, 7))
    # unsure counted as not similar; k cuts the ranks
    rep = assessor_report(doc, unsure="not_similar")
    assert rep["precision"]["precision"] == pytest.approx(4 / 8)
    rep = assessor_report(doc, k=2)
    assert rep["precision"]["precision"] == pytest.approx(2 / 4)
    assert rep["agreement"] == {"n_items": 0, "cohen_kappa": None, "fleiss_kappa": None}


def test_bootstrap_interval_resamples_queries():
    doc = _doc([[S, S, S, S], [N, N, N, N], [S, N, S, N]], queries=("a", "b", "c"))
    rep = assessor_report(doc, ci="bootstrap", random_state=0, n_bootstraps=4000)
    low, high = rep["precision"]["ci"]
    # the per-query ratios are 1, 0 and 0.5: a resample of 3 queries lies in [0, 1]
    # and the interval is wider than Wilson's over 12 "independent" pairs
    assert 0 <= low < 0.5 < high <= 1
    w_low, w_high = wilson_interval(6, 12)
    assert high - low > w_high - w_low
    again = assessor_report(doc, ci="bootstrap", random_state=0, n_bootstraps=4000)
    assert again["precision"]["ci"] == rep["precision"]["ci"]


def test_kappa_of_two_and_three_assessors(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.choice([S, N, U], size=12).tolist()
    b = [x if rng.random() < 0.6 else S for x in a]
    files = []
    for name, labels in (("ann", a), ("bob", b)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(_doc([labels], assessor=name)))
        files.append(path)
    rep = assessor_report(files)
    assert rep["assessors"] == ["ann", "bob"]
    assert rep["agreement"]["n_items"] == 12
    assert rep["agreement"]["cohen_kappa"] == pytest.approx(cohen_kappa_score(a, b))
    # Fleiss by hand for three raters of four items
    docs = [_doc([[S, S, N, U]]), _doc([[S, N, N, U]]), _doc([[S, S, N, S]])]
    rep = assessor_report(docs)
    # counts per item (S, N, U): [3,0,0], [2,1,0], [0,3,0], [1,0,2]
    p_items = np.array([1, 1 / 3, 1, 1 / 3])
    p_cat = np.array([6, 4, 2]) / 12
    p_e = np.sum(p_cat**2)
    expected = (p_items.mean() - p_e) / (1 - p_e)
    assert rep["agreement"]["fleiss_kappa"] == pytest.approx(expected)
    assert rep["agreement"]["cohen_kappa"] is None
    assert rep["precision"]["n_judged"] == 10  # two unsure of twelve left out


def _ab(n_queries, prefer_a):
    """A/B judgments and key: A's and B's lists share item x1 of each query."""
    key = {"format": KEY_FORMAT, "report": "ab1", "items": {}}
    rows = []
    for q in range(n_queries):
        for name, ranks in (("x0", {"a": 1, "b": None}), ("x1", {"a": 2, "b": 1})):
            key["items"][f"{q}{name}"] = {"query": f"q{q}", "track": name, **ranks}
        key["items"][f"{q}x2"] = {"query": f"q{q}", "track": "x2", "a": None, "b": 2}
        a_wins = q < prefer_a
        for name, judged in (("x0", a_wins), ("x1", True), ("x2", not a_wins)):
            rows.append({"item": f"{q}{name}", "judgment": S if judged else N})
    doc = {"format": JUDGMENTS_FORMAT, "report": "ab1", "mode": "ab", "judgments": rows}
    return doc, key


def test_ab_preference_sign_test():
    doc, key = _ab(10, prefer_a=8)
    rep = assessor_report(doc, key=key)
    pref = rep["preference"]
    assert (pref["a_wins"], pref["b_wins"], pref["ties"]) == (8, 2, 0)
    assert pref["preference_a"] == pytest.approx(0.8)
    ref = binomtest(8, 10).proportion_ci(confidence_level=0.95, method="exact")
    assert pref["ci"] == pytest.approx((ref.low, ref.high))
    # A's lists: x0 (8 of 10 similar) and x1 (all): 18 / 20
    assert pref["precision_a"] == pytest.approx(18 / 20)
    assert pref["precision_b"] == pytest.approx(12 / 20)
    # k=1: A's list is x0, B's is x1
    pref = assessor_report(doc, key=key, k=1)["preference"]
    assert (pref["a_wins"], pref["b_wins"], pref["ties"]) == (0, 2, 8)


def test_errors_name_the_problem(tmp_path):
    doc, key = _ab(2, prefer_a=1)
    with pytest.raises(ValueError, match="blind A/B report: pass its key"):
        assessor_report(doc)
    with pytest.raises(ValueError, match="belongs to report"):
        assessor_report(doc, key={**key, "report": "other"})
    bad = _doc([[S, "maybe"]])
    with pytest.raises(ValueError, match=r"item 'q0-n2'\) has judgment 'maybe'"):
        assessor_report(bad)
    with pytest.raises(FileNotFoundError, match="no judgments file at"):
        assessor_report(str(tmp_path / "missing.json"))
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a judgments file"):
        assessor_report(tmp_path / "x.json")
    assert math.isnan(assessor_report(_doc([[U, U]]))["precision"]["precision"])
