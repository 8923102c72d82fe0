"""/docs and /redoc work offline: every asset they load is served by the service itself."""

from __future__ import annotations

import re

import pytest

from tests.verifier.api.conftest import MakeClient

URL_ATTRIBUTES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
JS_URLS = re.compile(r"""(?:url|spec-url)\s*[:=]\s*['"]([^'"]+)['"]""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_only_local_assets(make_client: MakeClient, page: str):
    client, _ = await make_client(api_keys=["k"])  # open even when keys are set
    response = await client.get(page)
    assert response.status_code == 200
    html = response.text
    urls = URL_ATTRIBUTES.findall(html) + JS_URLS.findall(html)
    assert urls, html
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts, urls
    assert "://" not in html and "//fonts" not in html, html  # no CDN, no Google fonts
    for url in urls:
        assert url.startswith("/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
    for script in scripts:
        assert len((await client.get(script)).content) > 100_000  # the real bundle, not a stub


async def test_docs_assets_follow_the_root_path(make_client: MakeClient):
    client, app = await make_client()
    app.root_path = "/sieve"
    html = (await client.get("/docs")).text
    assert "/sieve/docs-assets/swagger-ui-bundle.js" in html
    assert "/sieve/openapi.json" in html
