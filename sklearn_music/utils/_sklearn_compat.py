"""Every private scikit-learn name that sklearn_music uses, in one place.

scikit-learn does not promise that names under ``sklearn.utils._*`` or
``sklearn.base._fit_context`` stay where they are. The package imports them from
here only, so that a release that moves one breaks (and is fixed in) this file
alone.
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    make_constraint,
    validate_parameter_constraints,
    validate_params,
)
from sklearn.utils.validation import validate_data

__all__ = [
    "HasMethods",
    "Hidden",
    "Interval",
    "InvalidParameterError",
    "Options",
    "StrOptions",
    "_fit_context",
    "make_constraint",
    "validate_parameter_constraints",
    "validate_data",
    "validate_params",
]
