"""/api/docs/ renders under Warden's own Content-Security-Policy (no inline script)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_render_without_csp_errors(live_server, new_page) -> None:
    page = new_page()
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    response = page.goto("/api/docs/")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    assert "Warden API" in page.locator(".swagger-ui .info .title").inner_text()
    assert page.locator(".opblock-tag").count() > 0  # the operations, read from /api/schema/
    assert not [m for m in messages if "Content Security Policy" in m or "Refused to" in m]
