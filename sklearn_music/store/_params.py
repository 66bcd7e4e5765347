"""Parameter constraints of the store's methods, and the checks of its query path."""

import os
from numbers import Integral

from ..utils._sklearn_compat import (
    Interval,
    StrOptions,
    make_constraint,
    validate_parameter_constraints,
)

# Constraint objects shared by the decorated methods and the query-path checks.
PATH = [str, os.PathLike]
K = [Interval(Integral, 0, None, closed="left")]
BATCH_SIZE = [Interval(Integral, 1, None, closed="left")]
RECOMMEND = {
    "history": ["array-like"],
    "k": K,
    "exhaustive": ["boolean"],
    "batch_size": BATCH_SIZE,
    "aggregate": [StrOptions({"mean", "clusters"})],
}
SIMILAR_TO_VECTOR = {"vector": ["array-like"], "k": K, "batch_size": BATCH_SIZE}


def check_k(k, caller):
    """Check ``k`` against ``K``; a plain non-negative int takes the fast path."""
    if not (type(k) is int and k >= 0) and not K[0].is_satisfied_by(k):
        validate_parameter_constraints({"k": K}, {"k": k}, caller_name=caller)
    return int(k)


def check_query_params(constraints, caller, **params):
    """``validate_params``' check and error, for the query methods.

    The decorator binds the signature and enters a config context on every
    call, which costs more than a lookup (a few microseconds); the queries
    test the same constraints directly and only build sklearn's error
    through :func:`validate_parameter_constraints` for a bad value.
    """
    for name, value in params.items():
        if not any(make_constraint(c).is_satisfied_by(value) for c in constraints[name]):
            validate_parameter_constraints(constraints, {name: value}, caller_name=caller)
