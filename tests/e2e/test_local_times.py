"""Times show in the viewer's time zone (UTC on hover), from a static script the CSP allows."""

from __future__ import annotations

import pytest

import audit
from tests.e2e.conftest import LIVE_PORT, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_audit_browser_shows_local_times_with_utc_on_hover(live_server, oidc_settings, browser) -> None:
    audit.record("test.event", "system:test", outcome="ok")
    audit.sequence_now()
    context = browser.new_context(base_url=f"http://127.0.0.1:{LIVE_PORT}", timezone_id="Asia/Tokyo")
    try:
        page = context.new_page()
        messages: list[str] = []
        page.on("console", lambda message: messages.append(message.text))
        sign_in(page, "carol", next_path="/audit/")
        cell = page.locator("tbody time").first
        cell.wait_for()
        page.wait_for_function("document.querySelector('tbody time').textContent.indexOf('UTC') === -1")
        assert "GMT+9" in cell.inner_text() or "JST" in cell.inner_text()
        assert cell.get_attribute("title").endswith("+00:00")
        assert not [m for m in messages if "Content Security Policy" in m or "Refused to" in m]
    finally:
        context.close()
