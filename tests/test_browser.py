"""The dashboard as a person sees it, in headless Chromium (Debian's chromium + chromedriver).

Nothing here downloads a browser: selenium is given /usr/bin/chromium and
/usr/bin/chromedriver, so its driver manager never runs. Where they are not
installed, these tests are skipped, and pytest's summary says why.
"""

import asyncio
import base64
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.delivery import Story
from tests.devsupport import execute, manual, pipeline, release_story, start_dev
from tests.waiting import wait_for_blocking

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and DRIVER.exists()),
        reason="browser tests need Chromium: apt-get install -y chromium chromium-driver",
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    with tempfile.TemporaryDirectory() as profile:
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)
        try:
            yield driver
        finally:
            driver.quit()


async def look(fn: Callable, *args: Any) -> Any:
    """Run a blocking browser call off the event loop, which serves the page."""
    return await asyncio.to_thread(fn, *args)


def text_of(browser: Any, css: str) -> str:
    return browser.find_element("css selector", css).text


def wait_for_text(browser: Any, css: str, text: str, timeout: float = 20.0) -> str:
    """Wait until the element shows `text` (the page refreshes itself)."""

    def shown() -> str | None:
        found = text_of(browser, css)
        return found if text in found else None

    # An exception means the page is between two loads.
    return wait_for_blocking(
        shown, timeout, what=f"{css} showing {text!r}", every=0.2, ignoring=(Exception,)
    )


@pytest.fixture
def config(config):
    # The dashboard is tested on deployments written here; no stage deploys on its own.
    return manual(config)


@pytest.fixture
async def dev(aiohttp_client, tmp_path, config):
    return await start_dev(aiohttp_client, tmp_path, config)


async def test_a_person_sees_the_three_stages_with_their_builds(dev, browser):
    await pipeline(dev)
    await look(browser.get, dev.url + "/")
    cards = await look(browser.find_elements, "css selector", ".stage")
    names = [card.text.splitlines()[0].split()[0] for card in cards]
    assert names == ["pasty", "baklava", "dumpling"]
    pasty = await look(text_of, browser, '[data-stage="pasty"]')
    assert "#1" in pasty and "Change 1: <script>alert(1)</script> & more" in pasty
    assert "#2 deploying (in progress)" in pasty
    assert "#1" in await look(text_of, browser, '[data-stage="baklava"]')
    assert "no build yet" in await look(text_of, browser, '[data-stage="dumpling"]')


async def test_a_build_moves_into_the_stage_when_its_deployment_succeeds(dev, browser):
    await pipeline(dev)
    await look(browser.get, dev.url + "/?refresh=1")
    assert "#1" in await look(text_of, browser, '[data-stage="pasty"] .build')
    execute(
        dev.db_path,
        "UPDATE deployments SET state = 'success', finished_at = ?, updated_at = ?,"
        " succeeded_at = ? WHERE state = 'in_progress'",
        [time.time()] * 3,
    )
    shown = await look(wait_for_text, browser, '[data-stage="pasty"] .build', "#2")
    assert "Change 2" in shown
    row = await look(text_of, browser, 'tr[data-build="2"]')
    assert "live now" in row


async def test_the_value_stream_map_of_one_build(dev, browser):
    await pipeline(dev, red=3)
    await look(browser.get, dev.url + "/")
    row = await look(text_of, browser, 'tr[data-build="1"]')
    assert "✓" in row and "waited 5m" in row
    assert "✗ failed" in await look(text_of, browser, 'tr[data-build="3"]')
    link = await look(browser.find_element, "css selector", 'tr[data-build="1"] a')
    await look(link.click)
    journey = await look(wait_for_text, browser, "ol.journey", "live in baklava")
    steps = [line.split(" at ")[0] for line in journey.splitlines()]
    assert steps == ["pushed to main", "CI green", "live in pasty", "live in baklava"]
    assert "(after 5m)" in journey
    assert "octocat pushed build #1." in await look(text_of, browser, "main")


def insights_story(path: Path, config: Any, now: float) -> None:
    """Three weeks of deliveries ending now: a rollback, a failed deployment, red builds."""
    story = Story(path, config)
    start = now - 20 * 86400
    for n in range(1, 13):
        pushed = start + n * 36 * 3600
        story.build(n, pushed, ci="failure" if n % 4 == 0 else "success", ci_at=pushed + 600)
        if n % 4:
            story.deploy(n, "pasty", pushed + 900, took=60)
            story.deploy(n, "baklava", pushed + 2 * 3600, took=60)
            story.deploy(n, "dumpling", pushed + 5 * 3600, took=120)
    story.rollback("dumpling", to=5, out=6, when=start + 6 * 36 * 3600 + 8 * 3600, took=300)
    story.deploy(11, "dumpling", start + 11 * 36 * 3600 + 9 * 3600, state="failure")
    story.close()


async def test_a_person_reads_the_insights_page_and_its_charts(
    aiohttp_client, tmp_path, config, browser
):
    insights_story(tmp_path / "dev.db", config, time.time())
    dev = await start_dev(aiohttp_client, tmp_path, config)
    await look(browser.set_window_size, 1280, 1300)  # the whole page, charts and all
    await look(browser.get, dev.url + "/insights?weeks=3")
    section = await look(text_of, browser, "section.insights")
    assert "Codertocat/Hello-World" in section
    assert "Deployment frequency: 10 to dumpling (3.3 a week) — high (DORA 2024)" in section
    assert "Change failure rate: 2 of 10 (20%): 1 failed, 1 rolled back, 0 reverted" in section
    charts = await look(browser.find_elements, "css selector", "section.insights svg.chart")
    assert [c.get_attribute("aria-label") for c in charts] == [
        "Deployments to dumpling per week",
        "Lead time for changes (median)",
        "Change failure rate",
        "Average wait before each stage, and why",
        "Failed builds per week",
    ]
    assert all(c.size["width"] == 380 for c in charts)  # drawn, not a broken image
    bars = await look(browser.find_elements, "css selector", "svg.chart rect")
    assert len(bars) > 10
    shot = Path(os.environ.get("PROMOBOT_SCREENSHOTS", tmp_path)) / "insights.png"
    await look(browser.save_screenshot, str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    await look(browser.set_window_size, 1280, 900)


def screenshot(browser: Any, name: str, tmp_path: Path) -> Path:
    """Save the whole page as a PNG (in $PROMOBOT_SCREENSHOTS when set, for people to look at)."""
    width, height = browser.execute_script(
        "return [document.body.scrollWidth, document.body.scrollHeight]"
    )
    clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    folder = Path(os.environ.get("PROMOBOT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


async def test_screens_show_names_waiting_reasons_rollbacks_and_the_diff(dev, browser, tmp_path):
    await release_story(dev)
    await look(browser.get, dev.url + "/")
    dumpling = await look(text_of, browser, '[data-stage="dumpling"]')
    assert "Locked by bob: rolled back from #2" in dumpling  # names, not U0DEVBOB
    assert "#3 waits for approval (promotion 4, asked by ada)" in dumpling
    row2 = await look(text_of, browser, 'tr[data-build="2"]')
    assert "↩" in row2 and "rolled back" in row2
    row1 = await look(text_of, browser, 'tr[data-build="1"]')
    assert "waited" in row1 and "approval 5m" in row1 and "live now" in row1
    assert "left" in await look(text_of, browser, 'tr[data-build="2"] td:nth-child(3)')
    row3 = await look(text_of, browser, 'tr[data-build="3"]')
    assert "✗ 1 failed deployment" in row3 and "‖ waits for approval" in row3
    legend = await look(text_of, browser, ".legend")
    assert "rolled back out of the stage" in legend and "was live there" in legend
    assert (await look(screenshot, browser, "dashboard", tmp_path)).stat().st_size > 10_000
    await look(browser.get, dev.url + "/builds/Codertocat/Hello-World/4")
    page = await look(text_of, browser, "main")
    assert "3 builds, 5 commits by 4 people since #1 in dumpling" in page
    assert "Merge pull request #102 from grace/escape — grace" in page
    assert "Release notes (#104) — ada" in page
    await look(browser.get, dev.url + "/builds/Codertocat/Hello-World/1")
    events = await look(text_of, browser, "table.events")
    assert "ada asked to promote #1 into dumpling (promotion 1)." in events
    assert "bob approved #1 for dumpling (promotion 1)." in events
    await look(browser.get, dev.url + "/builds/Codertocat/Hello-World/4")
    assert (await look(screenshot, browser, "build", tmp_path)).stat().st_size > 10_000
