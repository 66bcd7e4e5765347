"""Scoring listeners' judgments: precision with intervals, agreement, A/B preference.

The judgments come from the listening report (:func:`sklearn_music.report.write_report`):
one JSON file per assessor, downloaded from the page::

    {"format": "sklearn-music-judgments/1", "report": "...", "mode": "single" or "ab",
     "assessor": "name",
     "judgments": [{"item": "q0-n1", "query": "...", "track": "...", "rank": 1,
                    "judgment": "similar" | "not_similar" | "unsure"}, ...]}

In a blind A/B report the items carry no rank and no origin; the key file written
beside the report (never inside it) maps every item to its rank in the lists of
store A and store B.
"""

import json
import math
from numbers import Integral, Real
from os import PathLike
from pathlib import Path

import numpy as np

from .utils._sklearn_compat import Interval, StrOptions, validate_params

__all__ = ["assessor_report"]

JUDGMENTS_FORMAT = "sklearn-music-judgments/1"
KEY_FORMAT = "sklearn-music-ab-key/1"
CATEGORIES = ("similar", "not_similar", "unsure")


# --------------------------------------------------------------------------- #
# intervals and agreement (plain functions of counts)
# --------------------------------------------------------------------------- #
def _normal_quantile(confidence):
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes, n, confidence=0.95):
    """Wilson score interval of a binomial proportion; ``(nan, nan)`` when ``n == 0``."""
    if n == 0:
        return (math.nan, math.nan)
    z = _normal_quantile(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def clopper_pearson_interval(successes, n, confidence=0.95):
    """Exact (Clopper-Pearson) interval of a binomial proportion from beta quantiles."""
    from scipy.stats import beta

    if n == 0:
        return (math.nan, math.nan)
    alpha = 1 - confidence
    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return (low, high)


def cohen_kappa(ratings_a, ratings_b):
    """Cohen's kappa of two raters' labels of the same items (``nan`` if undefined)."""
    a, b = np.asarray(ratings_a), np.asarray(ratings_b)
    cats = np.union1d(a, b)
    p_o = float(np.mean(a == b))
    p_e = float(sum(np.mean(a == c) * np.mean(b == c) for c in cats))
    return math.nan if p_e == 1 else (p_o - p_e) / (1 - p_e)


def fleiss_kappa(counts):
    """Fleiss' kappa of a table ``counts[item, category]`` (raters per cell).

    Every item must be rated by the same number of raters (at least 2).
    """
    counts = np.asarray(counts, dtype=float)
    n = counts.sum(axis=1)
    if counts.ndim != 2 or len(counts) == 0 or np.any(n != n[0]) or n[0] < 2:
        raise ValueError("fleiss_kappa needs items rated by the same number (>= 2) of raters")
    n = n[0]
    p_item = (np.sum(counts**2, axis=1) - n) / (n * (n - 1))
    p_cat = counts.sum(axis=0) / counts.sum()
    p_e = float(np.sum(p_cat**2))
    return math.nan if p_e == 1 else (float(p_item.mean()) - p_e) / (1 - p_e)


# --------------------------------------------------------------------------- #
# reading the files
# --------------------------------------------------------------------------- #
def _load_json(source, what):
    if isinstance(source, dict):
        return source
    path = Path(source)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} file at {str(path)!r}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{str(path)!r} is not a {what} file (not JSON: {exc})") from None


def _read_judgments(source, index):
    doc = _load_json(source, "judgments")
    name = source if not isinstance(source, dict) else f"judgments[{index}]"
    if not isinstance(doc, dict) or doc.get("format") != JUDGMENTS_FORMAT:
        raise ValueError(f"{str(name)!r} is not a judgments file of format {JUDGMENTS_FORMAT!r}")
    rows = {}
    for j, row in enumerate(doc.get("judgments", [])):
        value = row.get("judgment")
        if value not in CATEGORIES:
            raise ValueError(
                f"{str(name)!r}: judgments[{j}] (item {row.get('item')!r}) has judgment "
                f"{value!r}, not one of {list(CATEGORIES)}"
            )
        rows[str(row["item"])] = row
    assessor = str(doc.get("assessor") or f"assessor {index + 1}")
    return assessor, doc.get("mode", "single"), str(doc.get("report", "")), rows


def _check_key(key, reports):
    key = _load_json(key, "A/B key")
    if not isinstance(key, dict) or key.get("format") != KEY_FORMAT:
        raise ValueError(f"the key is not an A/B key file of format {KEY_FORMAT!r}")
    if reports - {key.get("report", "")}:
        raise ValueError(
            f"the key belongs to report {key.get('report')!r}, the judgments to "
            f"{sorted(reports)}: pass the key written with the same report"
        )
    return key["items"]


# --------------------------------------------------------------------------- #
# the pieces of the report
# --------------------------------------------------------------------------- #
def _precision(pairs, confidence, ci, n_boot, rng):
    """Pooled precision and its interval; ``pairs`` = [(query, is_similar), ...]."""
    by_query = {}
    for query, hit in pairs:
        by_query.setdefault(query, []).append(hit)
    per_query = {}
    for query, hits in by_query.items():
        s, n = int(sum(hits)), len(hits)
        per_query[query] = {
            "precision": s / n,
            "ci": wilson_interval(s, n, confidence),
            "n_similar": s,
            "n_judged": n,
        }
    s, n = sum(q["n_similar"] for q in per_query.values()), len(pairs)
    if n == 0:
        interval = (math.nan, math.nan)
    elif ci == "wilson":
        interval = wilson_interval(s, n, confidence)
    else:  # resample whole queries: the judgments of a query are not independent
        sims = np.array([q["n_similar"] for q in per_query.values()], dtype=float)
        judged = np.array([q["n_judged"] for q in per_query.values()], dtype=float)
        draws = rng.integers(0, len(sims), size=(n_boot, len(sims)))
        ratios = sims[draws].sum(axis=1) / judged[draws].sum(axis=1)
        alpha = 1 - confidence
        interval = tuple(float(v) for v in np.quantile(ratios, [alpha / 2, 1 - alpha / 2]))
    overall = {
        "precision": s / n if n else math.nan,
        "ci": interval,
        "n_similar": s,
        "n_judged": n,
    }
    return overall, per_query


def _agreement(assessors, tables):
    """Kappas over the items that every assessor judged."""
    out = {"n_items": 0, "cohen_kappa": None, "fleiss_kappa": None}
    if len(tables) < 2:
        return out
    common = sorted(set.intersection(*(set(t) for t in tables)))
    out["n_items"] = len(common)
    if not common:
        return out
    if len(tables) == 2:
        out["cohen_kappa"] = cohen_kappa(
            [tables[0][i]["judgment"] for i in common], [tables[1][i]["judgment"] for i in common]
        )
    counts = [[sum(t[i]["judgment"] == c for t in tables) for c in CATEGORIES] for i in common]
    out["fleiss_kappa"] = fleiss_kappa(counts)
    return out


def _preference(tables, key, k, confidence, unsure):
    """Per query: which store's top-k got the larger share of 'similar'; sign test."""
    votes = {}  # (query, origin) -> [is_similar, ...]
    for table in tables:
        for item, row in table.items():
            entry = key.get(item)
            if entry is None:
                raise ValueError(f"item {item!r} of the judgments is not in the A/B key")
            if row["judgment"] == "unsure" and unsure == "exclude":
                continue
            for origin in ("a", "b"):
                rank = entry.get(origin)
                if rank is not None and (k is None or rank <= k):
                    votes.setdefault((entry["query"], origin), []).append(
                        row["judgment"] == "similar"
                    )
    wins = {"a": 0, "b": 0, "tie": 0}
    precision = {}
    for query in sorted({q for q, _ in votes}, key=str):
        pa = np.mean(votes.get((query, "a"), [0]))
        pb = np.mean(votes.get((query, "b"), [0]))
        wins["a" if pa > pb else "b" if pb > pa else "tie"] += 1
    for origin in ("a", "b"):
        hits = [h for (_, o), hs in votes.items() if o == origin for h in hs]
        precision[origin] = float(np.mean(hits)) if hits else math.nan
    decided = wins["a"] + wins["b"]
    return {
        "a_wins": wins["a"],
        "b_wins": wins["b"],
        "ties": wins["tie"],
        "preference_a": wins["a"] / decided if decided else math.nan,
        "ci": clopper_pearson_interval(wins["a"], decided, confidence),
        "precision_a": precision["a"],
        "precision_b": precision["b"],
    }


# --------------------------------------------------------------------------- #
# the public function
# --------------------------------------------------------------------------- #
@validate_params(
    {
        "judgments": [str, PathLike, dict, list, tuple],
        "key": [str, PathLike, dict, None],
        "k": [Interval(Integral, 1, None, closed="left"), None],
        "confidence": [Interval(Real, 0, 1, closed="neither")],
        "ci": [StrOptions({"wilson", "bootstrap"})],
        "unsure": [StrOptions({"exclude", "not_similar"})],
        "n_bootstraps": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def assessor_report(
    judgments,
    *,
    key=None,
    k=None,
    confidence=0.95,
    ci="wilson",
    unsure="exclude",
    n_bootstraps=2000,
    random_state=None,
):
    """Score the judgments of a listening panel: precision, agreement, A/B preference.

    Parameters
    ----------
    judgments : str, path-like, dict or list of them
        One assessor's judgments file (downloaded from the listening report of
        :func:`sklearn_music.report.write_report`), its parsed JSON, or a list of
        them, one per assessor.
    key : str, path-like or dict, default=None
        The key of a blind A/B report (``<out>.key.json``, written beside the
        report folder); needed for the preference of A over B. ``None`` for a
        report of one store.
    k : int, default=None
        Count only the neighbours ranked ``k`` or better (in A/B: in the list of
        the store); ``None`` counts every judged neighbour.
    confidence : float, default=0.95
        Confidence level of the intervals.
    ci : {"wilson", "bootstrap"}, default="wilson"
        Interval of the overall precision: ``"wilson"`` treats every judged pair
        as an independent trial (Wilson score interval); ``"bootstrap"``
        resamples whole queries (percentile interval over ``n_bootstraps``
        resamples), which allows for pairs of one query being alike. The
        intervals per query are always Wilson's.
    unsure : {"exclude", "not_similar"}, default="exclude"
        ``"exclude"`` leaves "unsure" judgments out of every count;
        ``"not_similar"`` counts them as "not similar". Agreement always uses
        the three categories.
    n_bootstraps : int, default=2000
        Resamples of ``ci="bootstrap"``.
    random_state : int, RandomState instance or None, default=None
        Seed of the bootstrap.

    Returns
    -------
    report : dict
        ``"assessors"`` (names), ``"n_judgments"``, ``"precision"`` (a dict of
        ``"precision"``, ``"ci"`` = (low, high), ``"n_similar"``, ``"n_judged"``
        over all judged pairs of all assessors), ``"per_query"`` (query id ->
        the same dict, Wilson intervals), ``"agreement"`` (``"n_items"`` judged
        by every assessor, ``"cohen_kappa"`` for exactly two assessors,
        ``"fleiss_kappa"`` for two or more, else None) and, with ``key``,
        ``"preference"``: per query the store whose top-k got the larger share
        of "similar" wins (the judgments of all assessors pooled), ties are
        left out; ``"a_wins"``, ``"b_wins"``, ``"ties"``, ``"preference_a"`` =
        a_wins / (a_wins + b_wins) with its exact binomial (Clopper-Pearson)
        ``"ci"``, and ``"precision_a"`` / ``"precision_b"``.

    See Also
    --------
    sklearn_music.report.write_report : The listening report the judgments come from.
    precision_at_k : Precision against labels instead of listeners.

    Notes
    -----
    Precision is the share of judged (query, neighbour) pairs judged "similar".
    The interval of the preference is the sign test's: a preference whose
    interval excludes 0.5 is significant at ``1 - confidence``.

    Examples
    --------
    >>> from sklearn_music.metrics import assessor_report
    >>> rows = [
    ...     {"item": f"q0-n{r}", "query": "a.ogg", "track": f"{r}.ogg", "rank": r,
    ...      "judgment": j}
    ...     for r, j in enumerate(["similar", "similar", "not_similar", "unsure"], 1)
    ... ]
    >>> doc = {"format": "sklearn-music-judgments/1", "assessor": "ann", "judgments": rows}
    >>> report = assessor_report(doc)
    >>> round(report["precision"]["precision"], 3), report["precision"]["n_judged"]
    (0.667, 3)
    """
    sources = list(judgments) if isinstance(judgments, (list, tuple)) else [judgments]
    if not sources:
        raise ValueError("judgments is empty: pass at least one judgments file")
    read = [_read_judgments(s, i) for i, s in enumerate(sources)]
    assessors = [r[0] for r in read]
    tables = [r[3] for r in read]
    key_items = None
    if key is not None:
        key_items = _check_key(key, {r[2] for r in read})
    elif any(r[1] == "ab" for r in read):
        raise ValueError("these are judgments of a blind A/B report: pass its key file as key")
    pairs = []
    for table in tables:
        for item, row in table.items():
            if row["judgment"] == "unsure" and unsure == "exclude":
                continue
            if key_items is not None:
                entry = key_items.get(item)
                if entry is None:
                    raise ValueError(f"item {item!r} of the judgments is not in the A/B key")
                ranks = [r for r in (entry.get("a"), entry.get("b")) if r is not None]
                rank, query = min(ranks), entry["query"]
            else:
                rank, query = row.get("rank"), row.get("query")
            if k is not None and rank is not None and rank > k:
                continue
            pairs.append((query, row["judgment"] == "similar"))
    rng = np.random.default_rng(_seed(random_state))
    overall, per_query = _precision(pairs, confidence, ci, n_bootstraps, rng)
    report = {
        "assessors": assessors,
        "n_judgments": sum(len(t) for t in tables),
        "precision": overall,
        "per_query": per_query,
        "agreement": _agreement(assessors, tables),
    }
    if key_items is not None:
        report["preference"] = _preference(tables, key_items, k, confidence, unsure)
    return report


def _seed(random_state):
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(0, 2**31 - 1))
