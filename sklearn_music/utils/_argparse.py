"""Argument types shared by the command lines (``sklearn-music`` and its sub-parsers)."""

import argparse


def positive_int(text):
    """Parse a command-line integer of at least 1, for ``type=`` of ``add_argument``.

    Parameters
    ----------
    text : str
        The argument as typed.

    Returns
    -------
    value : int
        The integer.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not an integer of at least 1.

    Examples
    --------
    >>> from sklearn_music.utils._argparse import positive_int
    >>> positive_int("3")
    3
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value
