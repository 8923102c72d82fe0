"""``/docs`` (Swagger UI) and ``/redoc``, with every script, style and icon served locally.

FastAPI's default pages load Swagger UI and ReDoc from a CDN (and ReDoc's fonts from Google), so
on an offline cluster they are blank. The assets come instead from the ``fastapi-offline``
package (part of the ``verifier`` extra), mounted under :data:`ASSETS_PATH`; nothing on these
pages points outside the service.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

__all__ = ["ASSETS_PATH", "DOCS_PATH", "REDOC_PATH", "asset_directory", "install_docs"]

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
#: Where the Swagger UI and ReDoc assets are served.
ASSETS_PATH = "/docs-assets"


def asset_directory() -> Path:
    """The installed directory holding ``swagger-ui-bundle.js``, ``swagger-ui.css`` and
    ``redoc.standalone.js``."""
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> list[str]:
    """Add the docs pages and their assets to ``app`` (built with ``docs_url=None``,
    ``redoc_url=None``); returns the paths to leave open when API keys are set."""
    app.mount(ASSETS_PATH, StaticFiles(directory=asset_directory()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    title = app.title

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{ASSETS_PATH}/{name}"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=asset(request, "swagger-ui-bundle.js"),
            swagger_css_url=asset(request, "swagger-ui.css"),
            swagger_favicon_url=asset(request, "favicon.png"),
            oauth2_redirect_url=root + OAUTH2_REDIRECT_PATH,
            # No badge that sends the schema to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=request.scope.get("root_path", "") + openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=asset(request, "redoc.standalone.js"),
            redoc_favicon_url=asset(request, "favicon.png"),
            with_google_fonts=False,
        )

    return [DOCS_PATH, REDOC_PATH, OAUTH2_REDIRECT_PATH, openapi_url]
