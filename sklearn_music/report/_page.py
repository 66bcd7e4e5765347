"""The listening report's page: one ``index.html`` with its CSS and script inline.

The page reads its data from a ``<script type="application/json">`` block, so the
folder opens from disk (``file://``) without a server. Judgments are kept in
``localStorage`` under the report's id and downloaded as a JSON file of the format
that :func:`sklearn_music.metrics.assessor_report` reads.
"""

import html
import json

from .._assessor import JUDGMENTS_FORMAT

__all__ = ["render_page"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1100px;color:#222}
header{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ccc;
z-index:2}
header input{font-size:1em;padding:.2em}
.query{border:1px solid #bbb;border-radius:6px;padding:.8em;margin:1.2em 0}
.query>h2{font-size:1.1em;margin:.2em 0}
.item{display:grid;grid-template-columns:2.5em 1fr 170px 300px;gap:.6em;align-items:center;
padding:.4em 0;border-top:1px solid #eee}
.track{font-family:monospace;font-size:.9em;word-break:break-all}
.meta{color:#666;font-size:.85em}
img.thumb{width:160px;height:48px;image-rendering:pixelated;display:block}
audio{width:300px;height:32px}
.judge button{margin-right:.2em;padding:.25em .5em;border:1px solid #999;border-radius:4px;
background:#f6f6f6;cursor:pointer}
.judge button.on[data-judgment=similar]{background:#3a3;color:#fff}
.judge button.on[data-judgment=not_similar]{background:#c33;color:#fff}
.judge button.on[data-judgment=unsure]{background:#888;color:#fff}
details.why{grid-column:2 / span 3;font-size:.9em}
details.why img{width:120px;height:120px;image-rendering:pixelated;float:left;margin-right:1em}
#status{margin-left:1em;color:#555}
"""

_SCRIPT = """
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const storeKey = "sklearn-music:" + data.report;
  // a browser may refuse storage to a page opened from disk: judgments then live
  // until the page is closed (the download still works)
  let saved = {};
  try { saved = JSON.parse(localStorage.getItem(storeKey) || "{}"); } catch (e) { saved = {}; }
  const state = {assessor: saved.assessor || "", judgments: saved.judgments || {}};
  const items = {};
  data.queries.forEach(q => q.items.forEach(it => { items[it.item] = [q, it]; }));
  const name = document.getElementById("assessor");
  name.value = state.assessor;

  function save() {
    try { localStorage.setItem(storeKey, JSON.stringify(state)); } catch (e) { /* no storage */ }
    const n = Object.keys(state.judgments).length;
    document.getElementById("status").textContent =
      n + " of " + Object.keys(items).length + " pairs judged";
  }
  function show(item) {
    document.querySelectorAll('.item[data-item="' + item + '"] button').forEach(b =>
      b.classList.toggle("on", b.dataset.judgment === state.judgments[item]));
  }
  document.querySelectorAll(".judge button").forEach(b => b.addEventListener("click", () => {
    const item = b.closest(".item").dataset.item;
    state.judgments[item] = b.dataset.judgment;
    show(item);
    save();
  }));
  name.addEventListener("input", () => { state.assessor = name.value.trim(); save(); });
  Object.keys(state.judgments).forEach(show);

  function judgments() {
    return Object.keys(state.judgments).sort().map(item => {
      const [q, it] = items[item] || [null, null];
      const row = {item: item, judgment: state.judgments[item]};
      if (q) { row.query = q.track; row.track = it.track; }
      if (it && it.rank !== undefined) row.rank = it.rank;
      return row;
    });
  }
  document.getElementById("export").addEventListener("click", () => {
    if (!state.assessor) { name.focus(); alert("Please type your name first."); return; }
    const doc = {format: FORMAT, report: data.report, mode: data.mode,
                 assessor: state.assessor, exported: new Date().toISOString(),
                 judgments: judgments()};
    const blob = new Blob([JSON.stringify(doc, null, 1)], {type: "application/json"});
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "judgments-" + state.assessor.replace(/[^A-Za-z0-9_-]+/g, "_") + ".json";
    document.body.appendChild(a);
    a.click();
    a.remove();
  });
  document.getElementById("clear").addEventListener("click", () => {
    if (!confirm("Forget every judgment of this report in this browser?")) return;
    state.judgments = {};
    document.querySelectorAll(".judge button").forEach(b => b.classList.remove("on"));
    save();
  });
  save();
})();
"""

_BUTTONS = (("similar", "similar"), ("not_similar", "not similar"), ("unsure", "unsure"))


def _e(text):
    return html.escape(str(text), quote=True)


def _audio(src, title):
    return f'<audio controls preload="metadata" src="{_e(src)}" title="{_e(title)}"></audio>'


def _why(why):
    if not why:
        return ""
    a, b = why["offsets"]
    return (
        '<details class="why"><summary>why similar?</summary>'
        f'<img src="{_e(why["heat"])}" alt="patch similarity: query (rows) against '
        'neighbour (columns)">'
        "<p>How alike each moment of the query (rows, time running down) is to each "
        "moment of the neighbour (columns, time running right); brighter is more alike. "
        f"Best-matching moments: query at {a:.1f} s, neighbour at {b:.1f} s.</p>"
        f"<p>query {_audio(why['query'], 'query, best-matching moment')}</p>"
        f"<p>neighbour {_audio(why['neighbour'], 'neighbour, best-matching moment')}</p>"
        "</details>"
    )


def _item(number, it):
    meta = []
    if it.get("score") is not None:
        meta.append(f"score {it['score']:.3f}")
    if it.get("label") is not None:
        meta.append(f"label: {_e(it['label'])}")
    buttons = "".join(
        f'<button type="button" data-judgment="{v}">{t}</button>' for v, t in _BUTTONS
    )
    return (
        f'<div class="item" data-item="{_e(it["item"])}">'
        f"<span>{number}.</span>"
        f'<div><div class="track">{_e(it["track"])}</div>'
        f'<div class="meta">{" · ".join(meta)}</div>'
        f'<div class="judge">{buttons}</div></div>'
        f'<img class="thumb" src="{_e(it["thumb"])}" alt="mel spectrogram">'
        f"{_audio(it['audio'], it['track'])}{_why(it.get('why'))}</div>"
    )


def _query(q):
    label = f' <span class="meta">label: {_e(q["label"])}</span>' if q.get("label") else ""
    head = (
        f'<h2>Query: <span class="track">{_e(q["track"])}</span>{label}</h2>'
        f'<div class="item"><span></span><div class="meta">excerpt from '
        f"{q['offset']:.1f} s</div>"
        f'<img class="thumb" src="{_e(q["thumb"])}" alt="mel spectrogram">'
        f"{_audio(q['audio'], q['track'])}</div>"
    )
    body = "".join(_item(n, it) for n, it in enumerate(q["items"], 1))
    return f'<section class="query">{head}{body}</section>'


def render_page(data):
    """The whole ``index.html`` of a report from its data (see ``_write``)."""
    intro = (
        "Listen to each query, then to each of the tracks below it, and judge whether "
        "it sounds similar to the query. Your judgments stay in this browser until you "
        "download them; send the downloaded file to the organiser."
    )
    if data["mode"] == "ab":
        intro += " The tracks of each query come from two systems, mixed in random order."
    payload = json.dumps(data, ensure_ascii=True).replace("</", "<\\/")
    script = _SCRIPT.replace("FORMAT", json.dumps(JUDGMENTS_FORMAT))
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(data['title'])}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(data['title'])}</h1><p>{intro}</p>"
        '<label>Your name: <input id="assessor" autocomplete="name"></label> '
        '<button id="export" type="button">Download judgments</button> '
        '<button id="clear" type="button">Clear</button><span id="status"></span></header>'
        f"<main>{''.join(_query(q) for q in data['queries'])}</main>"
        f'<script id="report-data" type="application/json">{payload}</script>'
        f"<script>{script}</script></body></html>\n"
    )
