"""The built documentation, looked at in a real headless browser (Chromium).

Run after ``make docs``: the site in ``docs/_build/html`` is served on 127.0.0.1 and
opened in headless Chromium through selenium. The checks are what a reader sees: the
left navigation is there on every kind of page, API names in it are not broken
mid-word, every image of the example gallery loads, and no reference to the package's
own names renders as plain code without a link. Screenshots of the main pages are saved
in ``docs/_build/screenshots`` (beside the site). The module skips, saying why, when the site is not
built or no Chromium, chromedriver or selenium is installed (Debian:
``apt-get install chromium chromium-driver``; ``pip install selenium``).
"""

import functools
import http.server
import importlib
import os
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# another built copy of the site can be checked with SKLEARN_MUSIC_DOCS_HTML=folder
HTML = Path(os.environ.get("SKLEARN_MUSIC_DOCS_HTML", ROOT / "docs" / "_build" / "html"))
SHOTS = HTML.parent / "screenshots"
PUBLIC_MODULES = (
    "sklearn_music",
    "sklearn_music.datasets",
    "sklearn_music.metrics",
    "sklearn_music.coldstart",
    "sklearn_music.store",
    "sklearn_music.persistence",
    "sklearn_music.report",
)
# private names the docs once referred to without a target (issue #14)
PRIVATE_NAMES = {"min_patch_frames", "MultiHeadNet"}


def _browser_paths():
    browser = next(
        (
            shutil.which(n)
            for n in ("chromium", "chromium-browser", "google-chrome")
            if shutil.which(n)
        ),
        None,
    )
    return browser, shutil.which("chromedriver")


def _package_names():
    """Every public name of the package and of its public modules, and those modules."""
    names = set(PUBLIC_MODULES) | PRIVATE_NAMES
    for mod in PUBLIC_MODULES:
        names.update(n for n in importlib.import_module(mod).__all__ if not n.startswith("_"))
    names.discard("__version__")
    return names


@pytest.fixture(scope="module")
def site():
    """The base URL of the built site, served on 127.0.0.1 for the module's tests."""
    if not (HTML / "index.html").is_file():
        pytest.skip(f"the docs are not built ({HTML / 'index.html'} is missing): run make docs")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser(site):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    binary, driver_path = _browser_paths()
    if binary is None or driver_path is None:
        pytest.skip(
            "no Chromium and chromedriver on PATH "
            "(Debian: apt-get install chromium chromium-driver)"
        )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _open(browser, site, page):
    browser.get(f"{site}/{page}")
    # the theme's scripts run on load; wait until the document is complete
    for _ in range(100):
        if browser.execute_script("return document.readyState") == "complete":
            return
    raise AssertionError(f"{page} did not finish loading")


def _sidebar_links(browser):
    return browser.execute_script(
        """
        const nav = document.querySelector('#pst-primary-sidebar nav.bd-docs-nav');
        if (!nav) return null;
        return Array.from(nav.querySelectorAll('a')).map(a => {
            const range = document.createRange();
            range.selectNodeContents(a);
            const visible = a.offsetParent !== null;
            return {text: a.textContent.trim(), href: a.getAttribute('href'),
                    lines: visible ? range.getClientRects().length : 0, visible};
        });
        """
    )


@pytest.mark.parametrize(
    "page",
    [
        "index.html",
        "user_guide.html",
        "getting_started.html",
        "api.html",
        "auto_examples/index.html",
        "generated/sklearn_music.MelSpectrogramTransformer.html",
    ],
)
def test_left_navigation_lists_the_site(browser, site, page):
    _open(browser, site, page)
    links = _sidebar_links(browser)
    assert links is not None, f"{page}: no navigation in the left sidebar"
    visible = {link["text"] for link in links if link["visible"]}
    for title in ("Getting started", "User guide", "Examples", "API reference"):
        assert title in visible, f"{page}: {title!r} missing from the left navigation"


def test_api_names_in_the_sidebar_are_not_broken(browser, site):
    _open(browser, site, "api.html")
    api = [
        link
        for link in _sidebar_links(browser)
        if link["visible"] and (link["href"] or "").startswith("generated/")
    ]
    assert len(api) >= 20, f"only {len(api)} API pages listed in the sidebar on api.html"
    broken = [link["text"] for link in api if link["lines"] != 1]
    assert not broken, f"API names wrapped over several lines in the sidebar: {broken}"


def test_user_guide_has_one_table_of_contents(browser, site):
    _open(browser, site, "user_guide.html")
    n_boxes = browser.execute_script(
        "return document.querySelectorAll('article .contents, article nav.contents').length"
    )
    assert n_boxes == 0, "the user guide repeats the 'On this page' box in its text"
    on_this_page = browser.execute_script(
        "return document.querySelectorAll('#pst-page-toc-nav a, .bd-toc-nav a').length"
    )
    assert on_this_page >= 5


def test_every_gallery_image_loads(browser, site):
    _open(browser, site, "auto_examples/index.html")
    examples = browser.execute_script(
        """
        return Array.from(document.querySelectorAll('.sphx-glr-thumbcontainer'))
            .map(t => ({title: t.innerText.trim(),
                        href: t.querySelector('a').getAttribute('href')}));
        """
    )
    assert len(examples) >= 7, examples
    # a reader starts with spectrograms
    assert "spectrogram" in examples[0]["title"].lower(), [e["title"] for e in examples]
    pages = ["auto_examples/index.html"] + [f"auto_examples/{e['href']}" for e in examples]
    for page in pages:
        _open(browser, site, page)
        images = browser.execute_script(
            """
            return Array.from(document.querySelectorAll('article img')).map(i => ({
                src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}));
            """
        )
        bad = [i["src"] for i in images if not i["ok"]]
        assert not bad, f"{page}: images that do not load: {bad}"
        assert images, f"{page}: no image (was the gallery built with plot_gallery=0?)"


def test_no_unresolved_reference_to_the_package(browser, site):
    names = _package_names()
    pages = sorted(
        str(p.relative_to(HTML))
        for p in HTML.rglob("*.html")
        if not p.relative_to(HTML).parts[0].startswith("_")
    )
    assert len(pages) >= 30
    unresolved = {}
    for page in pages:
        _open(browser, site, page)
        texts = browser.execute_script(
            """
            return Array.from(document.querySelectorAll('code.xref'))
                .filter(c => !c.closest('a'))
                .map(c => c.textContent.trim());
            """
        )
        ours = sorted(
            t
            for t in texts
            if t.split("(")[0].lstrip("~").startswith("sklearn_music")
            or t.split("(")[0].split(".")[-1] in names
        )
        if ours:
            unresolved[page] = ours
    assert not unresolved, f"references to the package without a link: {unresolved}"


def test_screenshots(browser, site):
    from PIL import Image

    SHOTS.mkdir(parents=True, exist_ok=True)
    for page in ("index.html", "user_guide.html", "api.html", "auto_examples/index.html"):
        _open(browser, site, page)
        path = SHOTS / (page.replace("/", "_").removesuffix(".html") + ".png")
        assert browser.save_screenshot(str(path)), f"no screenshot of {page}"
        with Image.open(path) as image:
            assert image.size[0] >= 1000
            # a rendered page, not a blank one: many distinct colours
            colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
            assert colours is None or len(colours) > 50, f"{page} renders blank"
