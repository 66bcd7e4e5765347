"""Shared docstring text, substituted into docstrings by :class:`Substitution`.

Parameter descriptions repeated across functions are written once in
:data:`_shared_docs` and put into each docstring by a ``{name}`` placeholder,
as imbalanced-learn's ``imblearn.utils._docstring`` does. The texts are indented
for a module-level function or class docstring (name at 4 spaces, description at
8 spaces).
"""

__all__ = ["Substitution", "_shared_docs"]


class Substitution:
    """Decorator that fills ``{name}`` placeholders in a docstring.

    Unlike :meth:`str.format`, only the given names are replaced, so that other
    braces in the docstring (sets of options, dict literals in examples) need
    no escaping. A given name without its placeholder in the docstring is an
    error, so that a misspelt placeholder cannot go unnoticed. A docstring that
    is ``None`` (``python -OO``) is left alone.

    Parameters
    ----------
    **params : str
        The text for each placeholder ``{name}``.

    Examples
    --------
    >>> from sklearn_music.utils._docstring import Substitution
    >>> @Substitution(who="world")
    ... def hello():
    ...     '''Say hello to the {who}, in {braces} kept as they are.'''
    >>> hello.__doc__
    'Say hello to the world, in {braces} kept as they are.'
    """

    def __init__(self, **params):
        self.params = params

    def __call__(self, obj):
        """Substitute the placeholders in ``obj``'s docstring.

        Parameters
        ----------
        obj : function or class
            The object whose docstring is completed.

        Returns
        -------
        obj : function or class
            The same object, its ``__doc__`` with the placeholders filled.
        """
        doc = obj.__doc__
        if doc is None:
            return obj
        for name, text in self.params.items():
            placeholder = "{" + name + "}"
            if placeholder not in doc:
                raise ValueError(
                    f"the docstring of {obj.__qualname__} has no placeholder {placeholder}"
                )
            doc = doc.replace(placeholder, text)
        obj.__doc__ = doc
        return obj


_shared_docs = {
    "y_query": """y_query : array-like of shape (n_queries,)
        Label of each query.""",
    "y_neighbors": """y_neighbors : array-like of shape (n_queries, n_retrieved)
        Labels of each query's retrieved tracks, nearest first.""",
    "groups_query": """groups_query : array-like of shape (n_queries,), default=None
        Group of each query (e.g. its artist); given with ``groups_neighbors``.""",
    "groups_neighbors": """groups_neighbors : array-like of shape (n_queries, n_retrieved), \
default=None
        Group of each retrieved track; those in the query's group are removed
        from the list before it is cut at ``k``.""",
    "n_relevant": """n_relevant : array-like of shape (n_queries,), default=None
        Number of relevant tracks of each query in the whole collection; default
        the number of relevant tracks in the retrieved list (exact when the list
        is the full ranking). A query without any relevant track scores 0.""",
}

# The mel front end (MelSpectrogramTransformer and MFCCStatistics).
_shared_docs["frontend_sr"] = """sr : int, default=16000
        Sampling rate in Hz. Files are resampled to it; waveforms given as arrays are
        taken to be at this rate."""
_shared_docs["frontend_band"] = """fmin : float, default=0.0
        Lowest frequency of the mel filters in Hz.
    fmax : float, default=None
        Highest frequency of the mel filters in Hz; ``None`` means ``sr / 2``."""
_shared_docs["frontend_crop"] = """offset : float, default=0.0
        Start each track this many seconds in. An offset at or past a track's end is
        an error.
    duration : float, default=None
        Crop-or-pad policy. ``None`` keeps each track whole (from ``offset``); a
        number of seconds takes that much audio from ``offset`` on and pads a shorter
        track with zeros at the end, so every track gives the same number of frames.
    short_tracks : {"error", "from_start", "pad"}, default="error"
        What to do with a track that ends at or before ``offset`` (a 20-s track with
        ``offset=30``):

        - ``"error"``: raise :class:`~sklearn_music.AudioLoadError` naming the track,
          so one short track stops the whole call;
        - ``"from_start"``: read that track from its start, as if ``offset`` were 0
          (then crop or pad it to ``duration`` like any track);
        - ``"pad"``: stand silence (``duration`` seconds of zeros) in for it; needs
          ``duration``.

        Other tracks are not affected, and other read errors are always raised."""
_shared_docs["frontend_jobs"] = """n_jobs : int, default=None
        Number of tracks processed in parallel with :class:`joblib.Parallel`;
        ``None`` means 1 unless in a :func:`joblib.parallel_config` context
        (``parallel_config(backend="dask")`` runs on a dask cluster). ``-1`` uses all
        processors. Parallelism pays off for files (decoding and resampling
        dominate); for short waveforms already in memory, copying them to the
        workers can cost more than it saves (``benchmarks/bench_mel.py``).
    verbose : int, default=0
        Show a tqdm progress bar over the tracks when non-zero."""
