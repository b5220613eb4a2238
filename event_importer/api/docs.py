"""The API's documentation pages, /docs (Swagger UI) and /redoc (ReDoc), served with no CDN.

Their JavaScript and CSS come from the `fastapi-offline` package and are served by the API itself,
so the pages work on a machine without internet access.

The pages are public; the schema they show (/openapi.json) is not, when a token is set. A browser
cannot send a bearer token when it opens a page, and a token in the URL would land in access logs
and browser history. So each page fetches the schema itself: when the answer is 401 it asks for
the token once, keeps it in the tab's sessionStorage, and sends it as the `Authorization` header,
for the schema and for Swagger UI's "Try it out" requests. The pages hold nothing about the API.
"""

import json
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs-assets"
_ASSETS = files("fastapi_offline") / "static"

# Fetch the schema with the tab's token, asking for it when the API answers 401, then show it.
_LOADER = """
const TOKEN_KEY = "event-importer-api-token";
function withToken(headers) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token && !headers.Authorization) headers.Authorization = "Bearer " + token;
  return headers;
}
async function loadSchema(url) {
  for (;;) {
    const answer = await fetch(url, {headers: withToken({})});
    if (answer.ok) return answer.json();
    if (answer.status !== 401) throw new Error(url + " answered " + answer.status);
    const token = window.prompt("This API needs its token (EVENT_IMPORTER_API_TOKEN):");
    if (token === null) throw new Error("no token given");
    sessionStorage.setItem(TOKEN_KEY, token.trim());
  }
}
function showError(error) {
  document.getElementById("ui").textContent = "Could not load the API description: " + error.message;
}
"""

_SWAGGER = """
loadSchema(SCHEMA_URL).then((spec) => SwaggerUIBundle({
  spec, dom_id: "#ui", deepLinking: true, showExtensions: true,
  requestInterceptor: (request) => { withToken(request.headers); return request; },
})).catch(showError);
"""

_REDOC = """
loadSchema(SCHEMA_URL).then((spec) => Redoc.init(spec, {}, document.getElementById("ui"))).catch(showError);
"""


def _page(title: str, schema_url: str, assets: str, scripts: list[str], start: str, css: list[str]) -> HTMLResponse:
    links = "".join(f'<link rel="stylesheet" href="{assets}/{name}">' for name in css)
    tags = "".join(f'<script src="{assets}/{name}"></script>' for name in scripts)
    return HTMLResponse(
        "<!doctype html><html><head><meta charset=\"utf-8\">"
        f"<title>{title}</title>{links}<link rel=\"icon\" href=\"{assets}/favicon.png\"></head>"
        f"<body><div id=\"ui\"></div>{tags}"
        f"<script>const SCHEMA_URL = {json.dumps(schema_url)};{_LOADER}{start}</script></body></html>"
    )


def add_docs(app: FastAPI) -> tuple[list[str], list[str]]:
    """Serve /docs, /redoc and their assets on `app` (built with `docs_url=None, redoc_url=None`).

    Returns:
        What to leave public: the pages' paths, and the prefixes of their assets.
    """
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(ASSETS_URL, StaticFiles(directory=str(_ASSETS)), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            f"{app.title} - Swagger UI", root + openapi_url, root + ASSETS_URL,
            ["swagger-ui-bundle.js"], _SWAGGER, ["swagger-ui.css"],
        )

    @app.get(REDOC_URL, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            f"{app.title} - ReDoc", root + openapi_url, root + ASSETS_URL, ["redoc.standalone.js"], _REDOC, []
        )

    return [DOCS_URL, REDOC_URL], [ASSETS_URL + "/"]
