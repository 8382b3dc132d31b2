"""Headless Chromium for the browser tests (JupyterLab, the course website): where it is, and
the options every test starts it with."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

# Headless, in a container, and quiet: no first-run pages, updates or background requests.
BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def chromium() -> tuple[str, str]:
    """Paths of Debian's Chromium and its driver; skips the test, with a hint, without them."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    if browser is None or driver is None:
        pytest.skip("chromium not installed: apt-get install chromium chromium-driver")
    return browser, driver


def chrome_options(browser: str, *flags: str) -> Any:
    """selenium ChromeOptions for ``browser`` with :data:`BASE_FLAGS` and ``flags``."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*BASE_FLAGS, *flags):
        options.add_argument(flag)
    return options
