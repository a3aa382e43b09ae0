"""The live page in a real headless browser: Debian's chromium (/usr/bin/chromium) driven by
Playwright (never `playwright install`: the system browser is used). An entry the collector
appends shows within 2 s, a firing alert shows, and a server restart resumes with no duplicate
row and no seq twice. With INSTRUMETRIQ_UPDATE_SCREENSHOT=1 it saves docs/img/live_page.png."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
playwright_api = pytest.importorskip("playwright.sync_api")

from .support.live_server import Collector, Running, options  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "img" / "live_page.png"
RULES = """
[[rule]]
name = "wide_spread"
where = "spread_bps > 50"
group_by = ["symbol"]
severity = "critical"
summary = "{symbol} spread {spread_bps:.0f} bps"

[[rule]]
name = "weak_sentiment"
kind = "window"
window = "1h"
select = ["avg(sentiment_mean) AS sent", "count(*) AS n"]
where = "n >= 1000"
summary = "mean sentiment {sent:.2f}"
"""


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def seqs_on_page(page) -> list[int]:
    return page.evaluate("window.liveState.received.slice()")


@pytest.mark.slow
def test_the_live_page_shows_entries_alerts_and_resumes_after_a_restart(tmp_path, browser):
    (tmp_path / "archive").mkdir()
    (tmp_path / "r.toml").write_text(RULES)
    collector = Collector(tmp_path / "archive", seed=3)
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "PEPEUSDT", "C042USDT"]
    for step in range(6):   # some history for the sparklines
        collector.burst(5, symbols=symbols, spread_bps=5.0 + step)
    server = Running(options(tmp_path, rules=str(tmp_path / "r.toml"), settle_s=0.3))
    page = browser.new_page(viewport={"width": 1280, "height": 560})
    try:
        server.wait_seq(30)
        page.goto(server.url + "/")
        page.wait_for_function("window.liveState && window.liveState.lastSeq === 30", timeout=15000)
        page.wait_for_selector("#conn[data-state=live]", timeout=15000)
        assert page.locator("#latest tbody tr").count() == 5
        # an appended entry is on the page within 2 s
        collector.burst(1, symbols=["NEWUSDT"], spread_bps=7.0)
        started = time.monotonic()
        page.wait_for_selector('tr[data-symbol="NEWUSDT"]', timeout=2000)
        assert time.monotonic() - started < 2.0
        # a firing alert shows
        collector.burst(1, symbols=["ETHUSDT"], spread_bps=90.0)
        page.wait_for_selector('#alerts li[data-rule="wide_spread"]', timeout=5000)
        assert "ETHUSDT spread 90 bps" in page.locator("#alerts").inner_text()
        assert page.locator('tr[data-symbol="ETHUSDT"] td').nth(3).inner_text() == "90.0"
        page.wait_for_timeout(1600)   # let the row flash end before the picture
        picture = SCREENSHOT if os.environ.get("INSTRUMETRIQ_UPDATE_SCREENSHOT") else tmp_path / "live_page.png"
        picture.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(picture))
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # a restart: the page reconnects by itself and resumes after the last seq it had
        before = seqs_on_page(page)
        server = server.restart()
        collector.burst(2, symbols=["BTCUSDT", "XRPUSDT"], spread_bps=6.0)
        page.wait_for_selector('tr[data-symbol="XRPUSDT"]', timeout=15000)
        after = seqs_on_page(page)
        assert after[:len(before)] == before and after == sorted(set(after))   # no seq twice, in order
        assert after[-1] == 34 and page.evaluate("window.liveState.lastSeq") == 34
        rows = page.eval_on_selector_all("#latest tbody tr", "rows => rows.map(r => r.dataset.symbol)")
        assert len(rows) == len(set(rows)) == 7   # one row per symbol, none twice
    finally:
        page.close()
        server.stop()
