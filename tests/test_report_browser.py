"""The listening report in a real headless browser (Chromium through selenium).

The report is opened from disk (``file://``), as an assessor would open it: every
player must load its excerpt, clicks must be kept, and the downloaded judgments must
score to what was clicked. Skips, saying why, when no Chromium, chromedriver or
selenium is installed (Debian: ``apt-get install chromium chromium-driver``).
"""

import json
import shutil
import time

import numpy as np
import pytest
import soundfile as sf

from sklearn_music.metrics import assessor_report
from sklearn_music.report import write_report
from sklearn_music.store import SimilarityStore
from sklearn_music.utils._test_common import tiny_pipeline


def _browser_paths():
    names = ("chromium", "chromium-browser", "google-chrome")
    browser = next((shutil.which(n) for n in names if shutil.which(n)), None)
    return browser, shutil.which("chromedriver")


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    binary, driver_path = _browser_paths()
    if binary is None or driver_path is None:
        pytest.skip(
            "no Chromium and chromedriver on PATH (Debian: apt-get install chromium "
            "chromium-driver)"
        )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1300,900",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.execute_cdp_cmd(
        "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """make_tracks in genre folders, a store from a tiny fitted pipeline and a random one."""
    pipe, tracks = tiny_pipeline(8)
    root = tmp_path_factory.mktemp("panel")
    ids = []
    for i, (y, genre) in enumerate(zip(tracks.data, tracks.genre)):
        (root / "music" / genre).mkdir(parents=True, exist_ok=True)
        sf.write(root / "music" / genre / f"t{i}.wav", y, tracks.sr)
        ids.append(f"{genre}/t{i}.wav")
    vectors = pipe[:-1].fit(list(tracks.data), tracks.genre).transform(list(tracks.data))
    SimilarityStore.build(root / "a.db", vectors, ids, n_neighbors=3)
    noise = np.random.default_rng(0).normal(size=vectors.shape)
    SimilarityStore.build(root / "b.db", noise, ids, n_neighbors=3)
    return root


def _open(browser, index):
    browser.get(index.as_uri())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = browser.execute_script(
            "return Array.from(document.querySelectorAll('audio')).map("
            "a => [a.readyState, a.duration, a.error ? a.error.code : 0, a.src])"
        )
        if state and all(r >= 1 and d > 0 for r, d, _, _ in state):
            return state
        time.sleep(0.2)
    bad = [s for s in state if not (s[0] >= 1 and s[1] > 0)]
    raise AssertionError(f"{len(bad)} of {len(state)} players did not load: {bad[:3]}")


def _click(browser, item, judgment):
    browser.find_element(
        "css selector", f'.item[data-item="{item}"] button[data-judgment="{judgment}"]'
    ).click()


def _export(browser, downloads, name):
    field = browser.find_element("id", "assessor")
    field.clear()
    field.send_keys(name)
    browser.find_element("id", "export").click()
    path = downloads / f"judgments-{name}.json"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if path.is_file() and path.stat().st_size > 0:
            time.sleep(0.2)  # let the browser finish the file
            return json.loads(path.read_text())
        time.sleep(0.2)
    raise AssertionError(f"no {path.name} in {sorted(p.name for p in downloads.iterdir())}")


def _data(browser):
    return browser.execute_script(
        "return JSON.parse(document.getElementById('report-data').textContent)"
    )


def test_judge_export_and_score(browser, collection, downloads, tmp_path):
    res = write_report(
        collection / "a.db", music_dir=collection / "music", out=tmp_path / "r", queries=3, k=3
    )
    state = _open(browser, res.index)
    assert len(state) == res.n_queries + res.n_items
    data = _data(browser)
    # the listener hears the genre: similar when the neighbour has the query's genre;
    # the first pair is left unsure
    expected = {"similar": 0, "judged": 0}
    for qi, q in enumerate(data["queries"]):
        for ni, it in enumerate(q["items"]):
            if qi == ni == 0:
                _click(browser, it["item"], "unsure")
                continue
            same = it["label"] == q["label"]
            _click(browser, it["item"], "similar" if same else "not_similar")
            expected["similar"] += same
            expected["judged"] += 1
    assert "9 of 9 pairs judged" in browser.find_element("id", "status").text
    # the judgments survive a reload (localStorage)
    _open(browser, res.index)
    assert len(browser.find_elements("css selector", ".judge button.on")) == res.n_items
    doc = _export(browser, downloads, "ann")
    assert doc["assessor"] == "ann" and len(doc["judgments"]) == res.n_items
    report = assessor_report(doc)
    assert report["precision"]["n_judged"] == expected["judged"]
    assert report["precision"]["precision"] == pytest.approx(
        expected["similar"] / expected["judged"]
    )


def test_blind_ab_hides_the_origin_and_scores_a_planted_preference(
    browser, collection, downloads, tmp_path
):
    res = write_report(
        collection / "a.db",
        store_b=collection / "b.db",
        music_dir=collection / "music",
        out=tmp_path / "ab",
        queries=6,
        k=3,
        random_state=0,
    )
    key = json.loads(res.key.read_text())["items"]
    _open(browser, res.index)
    # no attribute of any element and no field of the page's data tells the origin
    attrs = browser.execute_script(
        "return Array.from(document.querySelectorAll('*')).flatMap("
        "e => Array.from(e.attributes).map(a => [a.name, a.value]))"
    )
    assert not [a for a in attrs if a[1] in ("a", "b") or "origin" in a[0] or "rank" in a[0]]
    for q in _data(browser)["queries"]:
        for it in q["items"]:
            assert set(it) <= {"item", "track", "label", "audio", "thumb"}
    # the planted preference: every track that only A found is similar
    for item, entry in key.items():
        only_a = entry["a"] is not None and entry["b"] is None
        _click(browser, item, "similar" if only_a else "not_similar")
    pref = assessor_report(_export(browser, downloads, "bob"), key=res.key)["preference"]
    assert pref["b_wins"] == 0 and pref["a_wins"] >= 1
    assert pref["preference_a"] == 1.0 and pref["ci"][1] == 1.0
