"""MkDocs hook: write the API's OpenAPI document to docs/openapi.json before each build.

The API reference page renders that file with the neoteroi ``[OAD(...)]`` tag, so the
reference is always the document the code serves. The app is built on the embedded
settings in a temporary data folder; no service runs and nothing is sent anywhere.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

SPEC_NAME = "openapi.json"
REFERENCE_PAGE = "api-reference.md"
#: The generated reference opens with the spec's title as a second H1; the page has its own.
GENERATED_TITLE = re.compile(r'^# .*<span class="api-version">.*</span>\s*$', re.MULTILINE)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document ``GET /openapi.json`` answers, from an app on a scratch folder."""
    from api import create_app
    from batchq.settings import Settings

    with tempfile.TemporaryDirectory(prefix="batchq-docs-") as tmp:
        app = create_app(Settings(data_dir=Path(tmp)))
        response = app.test_client().get("/" + SPEC_NAME)
        if response.status_code != 200:
            raise RuntimeError(f"GET /{SPEC_NAME} answered {response.status_code}")
        document: dict[str, Any] = response.get_json()
    return document


def on_pre_build(config: Any, **kwargs: Any) -> None:
    """Write the document; only when it changed, so ``mkdocs serve`` does not rebuild forever."""
    target = Path(config["docs_dir"]) / SPEC_NAME
    text = json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Drop the generated reference's own title (it runs after the OAD plugin's rendering)."""
    if page.file.src_uri == REFERENCE_PAGE:
        return GENERATED_TITLE.sub("", markdown, count=1)
    return markdown
