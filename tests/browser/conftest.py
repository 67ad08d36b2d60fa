"""The console in a real browser: Playwright driving Debian's Chromium over real HTTP.

Playwright cannot download its own browsers here, so it starts ``/usr/bin/chromium``
(``.ci/run`` installs Debian's package). Each page a test visits is saved as a
screenshot in ``test-artifacts/screenshots/`` (the README names the folder), and
every page is watched for content-security-policy refusals and requests to
other hosts, which fail the test.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from api import create_app
from batchq.runtime import Runtime, build_runtime
from batchq.service.users import NewUser, create_user
from batchq.settings import Settings
from batchq.storage.migrate import upgrade
from tests.conftest import require
from tests.integration.conftest import (  # noqa: F401  (fixtures of the live-worker test)
    postgres_template,
    postgres_url,
    production_cluster,
    redis_url,
)
from tests.live_server import serving
from tests.unit.support import FakeDispatcher

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
TEST_TYPES = ("tests.support_types", "tests.scheduled_types")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole run."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require("the playwright package (the test extra)", False)
    require(f"Chromium at {CHROMIUM} (apt-get install chromium)",
            shutil.which(CHROMIUM) is not None)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Console:
    """A console served over HTTP, and the browser pages a test opened on it."""

    url: str
    app: Flask
    runtime: Runtime
    browser: Any
    name: str
    problems: list[str] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)

    def user(self, name: str, **user: Any) -> str:
        """Create a user (a system user unless ``user`` says otherwise); returns its token."""
        user.setdefault("is_system", not user)
        return create_user(self.runtime.storage.users, NewUser(name, **user))

    def page(self, viewport: tuple[int, int] = (1280, 900)) -> Any:
        """A new browser context (its own cookies) and page, watched for problems."""
        context = self.browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                           accept_downloads=True)
        self.contexts.append(context)
        context.route("**/*", self._local_only)
        page = context.new_page()
        page.on("console", self._console_message)
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.set_default_timeout(15_000)
        return page

    def sign_in(self, token: str, viewport: tuple[int, int] = (1280, 900)) -> Any:
        page = self.page(viewport)
        page.goto(self.url + "/console/sign-in")
        page.fill("#token", token)
        page.press("#token", "Enter")
        page.wait_for_url(re.compile(r".*/console/batches(\?.*)?$"))
        return page

    def shot(self, page: Any, name: str) -> Path:
        """Save a full-page screenshot as ``<test>-<name>.png``."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.name}-{name}.png"
        # caret="initial": hiding the caret would inject a style, which the CSP refuses.
        page.screenshot(path=str(path), full_page=True, caret="initial")
        return path

    def _local_only(self, route: Any) -> None:
        if route.request.url.startswith(self.url):
            route.continue_()
        else:
            self.problems.append(f"request to another host: {route.request.url}")
            route.abort()

    def _console_message(self, message: Any) -> None:
        # A 4xx the test asked for is logged as "Failed to load resource"; tests check statuses.
        if message.text.startswith("Failed to load resource"):
            return
        if message.type == "error" or "Content Security Policy" in message.text:
            self.problems.append(f"browser console: {message.text}")

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def _console(app: Flask, rt: Runtime, browser: Any,
             request: pytest.FixtureRequest) -> Iterator[Console]:
    with serving(app) as url:
        name = request.node.name.replace("[", "-").rstrip("]")
        console = Console(url, app, rt, browser, name)
        yield console
        console.close()
    assert not console.problems, console.problems


@pytest.fixture
def console(browser: Any, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Console]:
    """The console over SQLite with a recording dispatcher: batches move only when a test
    runs their messages (``tests.unit.support.run_to_end``)."""
    settings = Settings(data_dir=tmp_path / "data", types=TEST_TYPES, execute_slice_seconds=0.0)
    upgrade(settings.database_url)
    rt = build_runtime(settings, FakeDispatcher())
    yield from _console(create_app(runtime=rt), rt, browser, request)
    rt.storage.dispose()


@pytest.fixture
def live_console(browser: Any, production_cluster: Any,  # noqa: F811
                 request: pytest.FixtureRequest) -> Iterator[Console]:
    """The console of a PostgreSQL + Redis installation with real worker processes."""
    cluster = production_cluster
    yield from _console(create_app(runtime=cluster.runtime), cluster.runtime, browser, request)
