"""The built site as a reader sees it: every page of _build/html in headless Chromium, offline.

Each page is served on 127.0.0.1 and opened with scripts running and no other network; the
test waits for MathJax, the images and the fonts, then fails on raw TeX or a TeX error, raw
``{glue``/``{cite`` role text, an image that did not load, anything wider than the main column
that does not scroll inside it (or is cut off), a request that leaves the machine, and any console
error. A full-page screenshot of every page goes to _build/screenshots/ (look at them).
Run by ``make browser`` after ``make book``; set FACTORLAB_SITE to check another build.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cdp import Chromium, StaticServer, page_name

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("FACTORLAB_SITE", ROOT / "_build" / "html")).resolve()
if "FACTORLAB_SITE" not in os.environ and not SITE.is_dir():
    # a bare `pytest` before any build; `make browser` sets FACTORLAB_SITE, so there a missing site fails
    pytest.skip(f"no built site at {SITE} (make browser builds and checks it)", allow_module_level=True)
SHOTS = Path(os.environ.get("FACTORLAB_SCREENSHOTS", SITE.parent / "screenshots")).resolve()
CHECK_JS = (Path(__file__).parent / "check_page.js").read_text()
SKIP_DIRS = {"_static", "_sources", "_images", "_downloads"}
PAGES = sorted(p for p in SITE.rglob("*.html") if not SKIP_DIRS & set(p.relative_to(SITE).parts)) \
    if SITE.is_dir() else []
WIDTH, HEIGHT = 1280, 900  # a laptop window: the theme shows both sidebars


def test_the_site_was_built():
    assert (SITE / "index.html").is_file(), f"no built site at {SITE}: run `make book` first"
    assert len(PAGES) >= 5, f"only {len(PAGES)} pages under {SITE}"


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    with StaticServer(SITE) as server, Chromium(WIDTH, HEIGHT) as chromium:
        chromium.base_url = server.url
        yield chromium


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(SITE).as_posix() for p in PAGES])
def test_page_reads_offline(browser, page):
    redirect = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', page.read_text(), re.I)
    if redirect:  # index.html sends the reader to the root document: that page is checked itself
        assert (page.parent / redirect.group(1)).is_file(), f"{page.name} redirects to a missing {redirect.group(1)}"
        return
    url = browser.base_url + page.relative_to(SITE).as_posix()
    browser.open(url)
    result = browser.evaluate(CHECK_JS)
    browser.screenshot(SHOTS / f"{page_name(SITE, page)}.png")
    problems = list(result["problems"])
    problems += [f"request left the machine: {u}" for u in browser.requested_urls()
                 if not u.startswith((browser.base_url, "data:", "blob:", "about:"))]
    problems += [f"failed to load: {f}" for f in browser.failed_requests()]
    problems += [f"console error: {e}" for e in browser.console_errors()
                 if not e.endswith("/favicon.ico")]  # the browser's own guess; the book has no icon
    assert not problems, f"{page.relative_to(SITE)} ({result['stats']}):\n  " + "\n  ".join(problems)


def _local_targets(page: Path):
    """(attribute value, resolved path) of every href/src of ``page`` that points into the site."""
    from html.parser import HTMLParser
    from urllib.parse import unquote, urlsplit

    found = []

    class Links(HTMLParser):
        def handle_starttag(self, tag, attrs):
            for name, value in attrs:
                if name not in ("href", "src") or not value:
                    continue
                parts = urlsplit(value)
                if parts.scheme or parts.netloc or value.startswith(("#", "mailto:", "javascript:")):
                    continue
                found.append((value, (page.parent / unquote(parts.path)).resolve()))

    Links().feed(page.read_text(encoding="utf-8", errors="replace"))
    return found


def test_every_link_inside_the_site_resolves():
    """Every relative href/src of every page (the raw HTML of notebook outputs included, which
    Sphinx does not check) names a file of the built site."""
    broken = [f"{p.relative_to(SITE)}: {value}" for p in PAGES for value, target in _local_targets(p)
              if not (target.is_file() or (target.is_dir() and (target / "index.html").is_file()))]
    assert not broken, f"{len(broken)} links point at nothing:\n  " + "\n  ".join(broken[:20])
