"""Headless Chromium over the smoke site: math is typeset and no request leaves the machine.

Chromium writes a network log (``--log-net-log``); any http(s) request that a *page* started
(its initiator is an origin, unlike the browser's own background requests) counts as leaving.
"""

import json
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM, reason="chromium is not installed")]


def browse(page, workdir):
    """Load ``page``; return (rendered DOM, URLs of http(s) requests the page started)."""
    netlog = workdir / "net.json"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={workdir / 'profile'}", "--virtual-time-budget=15000",
           f"--log-net-log={netlog}", "--dump-dom", page.as_uri()]
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


def test_the_detector_sees_a_page_request(tmp_path):
    page = tmp_path / "probe.html"
    page.write_text('<html><body><img src="http://127.0.0.1:9/x.png"></body></html>')
    _, leaving = browse(page, tmp_path)
    assert leaving == ["http://127.0.0.1:9/x.png"]


def test_pages_typeset_math_and_stay_offline(smoke_site, tmp_path):
    pages = sorted(p for p in smoke_site.rglob("*.html") if p.name not in ("genindex.html",))
    assert pages
    for i, page in enumerate(pages):
        dom, leaving = browse(page, tmp_path / str(i))
        assert not leaving, f"{page.name} requested {leaving}"
        if "notebooks" in page.parts:
            assert "<mjx-container" in dom, f"math is not typeset in {page.name}"
