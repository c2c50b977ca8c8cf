"""Headless Chromium over every page of the smoke site.

Checks: math is typeset (MathJax ran: ``<mjx-container`` in the DOM, and no raw ``$…$``,
``\\(`` or ``\\[`` left in the text), every ``<img>`` points at a real image file of the site,
and no request leaves the machine. Chromium writes a network log (``--log-net-log``); any
http(s) request that a *page* started (its initiator is an origin, unlike the browser's own
background requests) counts as leaving. Screenshots of the intro and one chapter are saved under
``_build/screenshots/`` for review.
"""

import json
import re
import shutil
import subprocess

import pytest

from conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM, reason="chromium is not installed")]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=15000"]
RAW_MATH = re.compile(r"\\\(|\\\[|\$\$|(?<![\w$])\$[^$\s][^$\n]{0,200}?\$(?![\w$])")
IMAGE_MAGIC = (b"\x89PNG", b"<svg", b"<?xml", b"\xff\xd8\xff", b"GIF8")


def browse(page, workdir, *extra):
    """Load ``page``; return (rendered DOM, URLs of http(s) requests the page started)."""
    workdir.mkdir(parents=True, exist_ok=True)
    netlog = workdir / "net.json"
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={workdir / 'profile'}", f"--log-net-log={netlog}",
           *extra, page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    log = json.loads(netlog.read_text())
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    leaving = []
    for event in log["events"]:
        params = event.get("params", {})
        if types.get(event["type"]) == "URL_REQUEST_START_JOB":
            url, initiator = params.get("url", ""), params.get("initiator", "")
            if url.startswith(("http:", "https:")) and initiator != "not an origin":
                leaving.append(url)
    return proc.stdout, leaving


def visible_text(dom: str) -> str:
    """The DOM without scripts, styles, code, and typeset math."""
    for tag in ("script", "style", "pre", "code", "mjx-container", "mjx-assistive-mml"):
        dom = re.sub(rf"<{tag}\b.*?</{tag}>", " ", dom, flags=re.S)
    return re.sub(r"<[^>]+>", " ", dom)


def test_the_detector_sees_a_page_request(tmp_path):
    page = tmp_path / "probe.html"
    page.write_text('<html><body><img src="http://127.0.0.1:9/x.png"></body></html>')
    _, leaving = browse(page, tmp_path / "w", "--dump-dom")
    assert leaving == ["http://127.0.0.1:9/x.png"]


def test_raw_math_detector():
    assert RAW_MATH.search(visible_text("<p>value $x^2$ here</p>"))
    assert RAW_MATH.search(visible_text(r"<p>\(a\)</p>"))
    assert not RAW_MATH.search(
        visible_text("<p>costs $5 and $6</p><mjx-container>$x$</mjx-container>"))


def test_every_page_typesets_math_loads_images_and_stays_offline(smoke_site, tmp_path):
    pages = sorted(smoke_site.rglob("*.html"))
    assert len(pages) > 5
    typeset = []
    for i, page in enumerate(pages):
        dom, leaving = browse(page, tmp_path / str(i), "--dump-dom")
        assert not leaving, f"{page.name} requested {leaving}"
        raw = RAW_MATH.search(visible_text(dom))
        assert raw is None, f"untypeset math in {page.relative_to(smoke_site)}: {raw.group(0)!r}"
        if "<mjx-container" in dom:
            typeset.append(page.name)
        for src in re.findall(r'<img[^>]+src="([^"]+)"', dom):
            assert not src.startswith(("http:", "https:", "//")), src
            if src.startswith("data:"):
                continue
            target = (page.parent / src.split("#")[0].split("?")[0]).resolve()
            assert target.is_file(), f"{page.name}: missing image {src}"
            assert target.read_bytes()[:5].startswith(IMAGE_MAGIC), f"{src} is not an image"
    assert "concentration.html" in typeset and "window.html" in typeset


def test_screenshots_for_review(smoke_site, tmp_path):
    out = ROOT / "_build" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    for name, page in (("intro", smoke_site / "book" / "intro.html"),
                       ("chapter", smoke_site / "notebooks" / "concentration.html")):
        shot = out / f"{name}.png"
        browse(page, tmp_path / name, f"--screenshot={shot}", "--window-size=1200,1600")
        assert shot.read_bytes()[:4] == b"\x89PNG"
