"""Side inputs of :class:`~sklearn_music.MultimodalEmbedder`, as plain numpy arrays.

The columns of a track table are read here (:func:`_read_table`): the spectrogram
column, an optional text column (lyrics), categorical and numeric metadata columns.
Text is split by a plain regular expression (:func:`tokenize`, no download) and
mapped to token ids through a vocabulary learned in ``fit``
(:func:`_fit_vocabulary`); categories and numbers are coded with what ``fit``
learned (:func:`_encode_categories`, :func:`_encode_numbers`). No torch here.

Codes: a token id ``0`` is padding and ``1`` an unknown word; a category code ``0``
is missing and ``1`` unknown (unseen in ``fit``); a missing number is ``0`` with
its missing flag set.
"""

import re
from collections import Counter
from collections.abc import Mapping

import numpy as np

from ._patches import _ragged_spectrograms
from .utils._sklearn_compat import HasMethods, validate_params

__all__ = ["add_spectrograms", "tokenize"]

_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*|\d+")
PAD, UNKNOWN = 0, 1  # token ids
MISSING, UNSEEN = 0, 1  # category codes


def tokenize(text):
    """Split a text into lower-case word tokens with a plain regular expression.

    Words are runs of letters (with inner apostrophes: ``"don't"``) or of digits;
    punctuation and white space separate them. A missing text (``None``, NaN or
    an empty string) has no token.

    Parameters
    ----------
    text : str or None
        The text.

    Returns
    -------
    tokens : list of str
        The tokens, in order.

    Examples
    --------
    >>> from sklearn_music._side import tokenize
    >>> tokenize("Don't stop -- 2 more NIGHTS!")
    ["don't", 'stop', '2', 'more', 'nights']
    >>> tokenize(None)
    []
    """
    if _is_missing(text):
        return []
    return _TOKEN.findall(str(text).lower())


def _is_missing(value):
    """True for None, NaN, pandas' NA / NaT and the empty string."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    try:
        return bool(value != value)  # NaN, NaT
    except (TypeError, ValueError):
        return False


def _fit_vocabulary(texts, *, min_count, max_size):
    """Word -> id of the ``max_size`` most frequent words seen ``min_count`` times.

    Ties are broken alphabetically; ids start at 2 (0 pads, 1 is the unknown word).
    """
    counts = Counter(tok for text in texts for tok in tokenize(text))
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return {w: i + 2 for i, w in enumerate(words[:max_size])}


def _encode_texts(texts, vocabulary, max_tokens):
    """Token ids ``(n, max_tokens)`` (int64, 0-padded) of the first ``max_tokens``
    tokens of every text; a missing text is all padding."""
    ids = np.zeros((len(texts), max_tokens), dtype=np.int64)
    for i, text in enumerate(texts):
        toks = tokenize(text)[:max_tokens]
        ids[i, : len(toks)] = [vocabulary.get(t, UNKNOWN) for t in toks]
    return ids


def _category_key(value):
    """The string a category is stored under (so 3 and "3" are one category)."""
    return str(value)


def _fit_categories(columns):
    """Sorted distinct (string) categories of every categorical column."""
    return [sorted({_category_key(v) for v in values if not _is_missing(v)}) for values in columns]


def _encode_categories(columns, categories, n_tracks):
    """Codes ``(n, n_columns)``: 0 missing, 1 unseen, ``2 + index`` in ``categories``."""
    codes = np.zeros((n_tracks, len(categories)), dtype=np.int64)
    for j, (values, cats) in enumerate(zip(columns, categories)):
        index = {c: k + 2 for k, c in enumerate(cats)}
        codes[:, j] = [
            MISSING if _is_missing(v) else index.get(_category_key(v), UNSEEN) for v in values
        ]
    return codes


def _numbers(values, name):
    """A numeric column as float64 with NaN where missing, or ValueError naming it."""
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if _is_missing(v):
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"numeric column {name!r} row {i} is {v!r}, not a number") from None
        if not np.isfinite(out[i]):
            raise ValueError(f"numeric column {name!r} row {i} is {v!r}; use NaN for missing")
    return out


def _fit_numbers(columns, names):
    """Mean and standard deviation (1 where 0 or undefined) of every numeric column."""
    mean, scale = np.zeros(len(columns)), np.ones(len(columns))
    for j, (values, name) in enumerate(zip(columns, names)):
        x = _numbers(values, name)
        x = x[~np.isnan(x)]
        if x.size:
            mean[j] = x.mean()
            scale[j] = x.std() if x.std() > 1e-12 else 1.0
    return mean, scale


def _encode_numbers(columns, names, mean, scale, n_tracks):
    """Scaled values (0 where missing) and missing flags, float32 ``(n, n_columns)``."""
    values = np.zeros((n_tracks, len(columns)), dtype=np.float32)
    missing = np.zeros((n_tracks, len(columns)), dtype=np.float32)
    for j, (col, name) in enumerate(zip(columns, names)):
        x = _numbers(col, name)
        flag = np.isnan(x)
        values[:, j] = np.where(flag, 0.0, (x - mean[j]) / scale[j])
        missing[:, j] = flag
    return values, missing


def _column(X, name, n_tracks):
    """Column ``name`` of a DataFrame or a dict of columns as a list; a column that
    is absent reads as all missing."""
    if name is None or name not in X:
        return [None] * n_tracks
    values = X[name]
    values = values.tolist() if hasattr(values, "tolist") else list(values)
    if len(values) != n_tracks:
        raise ValueError(
            f"column {name!r} has {len(values)} rows but the spectrogram column has {n_tracks}"
        )
    return values


def _read_table(X, spectrogram_column, text_column, categorical, numeric):
    """Spectrograms and raw side columns of a DataFrame or dict of columns.

    Returns ``(specs, texts, categorical_columns, numeric_columns)``, or None when
    ``X`` is not a table (then it is an array of spectrograms, without side inputs).
    """
    from scipy.sparse import issparse

    if issparse(X):  # a DOK matrix is a Mapping too; refused as sparse later
        return None
    if not (isinstance(X, Mapping) or (hasattr(X, "columns") and hasattr(X, "iloc"))):
        return None
    if spectrogram_column not in X:
        columns = list(X.columns if hasattr(X, "columns") else X.keys())
        raise ValueError(
            f"X has no column {spectrogram_column!r} (spectrogram_column); its columns "
            f"are {columns[:20]}"
        )
    cells = X[spectrogram_column]
    cells = list(cells.tolist() if hasattr(cells, "tolist") else cells)
    if not cells:
        raise ValueError("X is empty: MultimodalEmbedder needs at least one track")
    bad = next((i for i, c in enumerate(cells) if getattr(c, "ndim", None) != 2), None)
    if bad is not None:
        raise ValueError(
            f"X[{spectrogram_column!r}] row {bad} is {type(cells[bad]).__name__} of "
            f"shape {getattr(cells[bad], 'shape', None)}; every cell must be a 2-D "
            "(n_mels, n_frames) array"
        )
    specs = _ragged_spectrograms(cells)
    n = len(specs)
    texts = _column(X, text_column, n)
    cats = [_column(X, c, n) for c in categorical]
    nums = [_column(X, c, n) for c in numeric]
    return specs, texts, cats, nums


@validate_params(
    {
        "table": ["array-like", dict],
        "mel": [HasMethods(["transform"])],
        "path_column": [str],
        "spectrogram_column": [str],
    },
    prefer_skip_nested_validation=True,
)
def add_spectrograms(table, *, mel, path_column="path", spectrogram_column="spectrogram"):
    """Add a spectrogram column computed from a path (or waveform) column.

    The table input of :class:`~sklearn_music.MultimodalEmbedder` from a table of
    audio files. :class:`~sklearn.compose.ColumnTransformer` cannot do this: it
    needs 2-D outputs and stacks them side by side, whereas every track's
    spectrogram is a 2-D array of its own. In a pipeline, wrap this function in a
    :class:`~sklearn.preprocessing.FunctionTransformer` (the mel front end is
    stateless, so nothing needs fitting)::

        FunctionTransformer(add_spectrograms, kw_args={"mel": mel})

    Parameters
    ----------
    table : DataFrame or dict of columns
        The track table; it is not modified.
    mel : transformer
        Maps the list of paths (or waveforms) to spectrograms, e.g. a
        :class:`~sklearn_music.MelSpectrogramTransformer`.
    path_column : str, default="path"
        Column of paths, file-like objects or waveforms.
    spectrogram_column : str, default="spectrogram"
        Name of the new column (one 2-D array per track).

    Returns
    -------
    table : DataFrame or dict of columns
        A copy of ``table`` with the spectrogram column added (a DataFrame for a
        DataFrame, else a dict).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_music import MelSpectrogramTransformer, add_spectrograms
    >>> waves = np.random.default_rng(0).normal(size=(2, 8000)).astype(np.float32)
    >>> table = pd.DataFrame({"path": list(waves), "genre": ["rock", "jazz"]})
    >>> mel = MelSpectrogramTransformer(sr=8000, n_mels=16)
    >>> out = add_spectrograms(table, mel=mel)
    >>> list(out.columns), out["spectrogram"][0].shape
    (['path', 'genre', 'spectrogram'], (16, 16))
    """
    if path_column not in table:
        raise ValueError(f"table has no column {path_column!r} (path_column)")
    paths = table[path_column]
    paths = paths.tolist() if hasattr(paths, "tolist") else list(paths)
    specs = list(mel.transform(paths))
    if hasattr(table, "assign"):
        return table.assign(**{spectrogram_column: specs})
    return {**dict(table), spectrogram_column: specs}
