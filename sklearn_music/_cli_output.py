"""The result lists of ``sklearn-music similar`` and ``recommend``, as text, JSON or CSV.

Track ids are file paths, and a file name may hold any character but ``/`` and NUL:
a newline or a tab in an id must not start a forged line or column of the output.

``text``
    ``score<TAB>track`` per line, best first; the id is escaped as a Python string
    literal's body: ``\\`` as ``\\\\``, tab, newline and carriage return as ``\\t``,
    ``\\n``, ``\\r``, other control and unprintable characters (and the lone
    surrogates of undecodable file-name bytes) as ``\\xNN``, ``\\uNNNN`` or
    ``\\UNNNNNNNN``. Printable text, accents included, is written as it is.
``json``
    One JSON object: ``{"query": ..., "results": [{"rank": 1, "track": ..., "score":
    ...}, ...]}`` (``"history"`` instead of ``"query"`` for ``recommend``), ASCII-only
    with ``\\u`` escapes, so any id survives a round trip through ``json.loads``.
``csv``
    A ``rank,track,score`` header and one row per result, quoted as
    :mod:`csv` does (a field holding a comma, quote or newline is quoted);
    lone surrogates are written as ``\\udcNN`` escapes.
"""

import csv
import json
import unicodedata

FORMATS = ("text", "json", "csv")
_SHORT = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def escape_id(track_id):
    """``track_id`` as one line of printable text (see the module docstring)."""
    text = str(track_id)
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for ch in text:
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif ch.isprintable() and unicodedata.category(ch) != "Cs":
            out.append(ch)
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}"
                if code < 0x100
                else f"\\u{code:04x}"
                if code < 0x10000
                else f"\\U{code:08x}"
            )
    return "".join(out)


def _encodable(text):
    """``text`` with lone surrogates written as ``\\udcNN`` (they cannot be encoded)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def write_results(pairs, *, fmt, file, query=None, history=None):
    """Write ``(track_id, score)`` pairs to ``file`` in ``fmt`` (text, json or csv)."""
    if fmt == "text":
        for track, score in pairs:
            file.write(f"{score:.4f}\t{escape_id(track)}\n")
    elif fmt == "json":
        doc = {} if history is None else {"history": list(history)}
        if query is not None:
            doc["query"] = query
        doc["results"] = [
            {"rank": r, "track": track, "score": float(score)}
            for r, (track, score) in enumerate(pairs, 1)
        ]
        file.write(json.dumps(doc, ensure_ascii=True) + "\n")
    elif fmt == "csv":
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["rank", "track", "score"])
        for r, (track, score) in enumerate(pairs, 1):
            writer.writerow([r, _encodable(str(track)), repr(float(score))])
    else:
        raise ValueError(f"format={fmt!r} must be one of {FORMATS}")
