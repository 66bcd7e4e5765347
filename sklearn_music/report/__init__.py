"""Listening evaluation: a static HTML report of query tracks and their neighbours.

:func:`write_report` writes a folder that any browser opens without a server: per
query track a short excerpt, its nearest tracks (each with a player, the score, the
label when known and a mel-spectrogram thumbnail), and buttons to judge every pair
"similar", "not similar" or "unsure". The judgments stay in the browser
(``localStorage``) and download as JSON with the assessor's name; score them with
:func:`sklearn_music.metrics.assessor_report`. With two stores the report is a blind
A/B test. :func:`why_similar` compares two tracks patch by patch.

The names load lazily, so that the command line's parser stays light.
"""

import importlib

from ._cli import add_report_parser

__all__ = [
    "add_report_parser",
    "patch_embeddings",
    "representative_offset",
    "why_similar",
    "write_report",
]

_LAZY = {
    "patch_embeddings": "_why",
    "representative_offset": "_why",
    "why_similar": "_why",
    "write_report": "_write",
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
