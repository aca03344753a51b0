"""The Firebase JS SDK the sign-in page runs comes from the API itself: its two self-contained
browser builds, as JavaScript, nothing else of the npm package, and nothing they would fetch
from a CDN at run time. Without them the API does not start."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from loyalty_worker.api import app as api_app
from loyalty_worker.api.app import VENDOR_FILES, VENDOR_PATH, BrowserSdkMissing
from tests.unit.test_api import Api, assemble_api, build_api

# Where the SDK's modules are published for <script type=module>: a build loading from there
# would be no self-contained build at all.
CDN = re.compile(r"gstatic\.com|jsdelivr|unpkg\.com|cdnjs|esm\.sh|skypack")


@pytest.fixture
def api() -> Iterator[Api]:
    with build_api() as built:
        yield built


@pytest.mark.parametrize("name", VENDOR_FILES)
def test_each_sdk_file_is_served_as_javascript_and_loads_nothing_from_a_cdn(
    api: Api, name: str
) -> None:
    response = api.client.get(f"{VENDOR_PATH}/{name}")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    text = response.text
    assert not CDN.search(text)
    assert "import(" not in text  # no module loaded at run time
    # A UMD script: in a page it defines (or extends) ``window.firebase``.
    assert text.startswith("((e,t)=>{") and ".firebase" in text[:400]


def test_nothing_else_of_the_package_is_served(api: Api) -> None:
    for path in ("package.json", "firebase-auth.js", "..%2Fpackage.json", "../app.py"):
        assert api.client.get(f"{VENDOR_PATH}/{path}").status_code == 404
    # The dashboard's own files are still served beside them.
    assert api.client.get("/dashboard/static/dashboard.js").status_code == 200


def test_the_sdk_is_served_before_anyone_signs_in(api: Api) -> None:
    response = api.client.get(f"{VENDOR_PATH}/{VENDOR_FILES[0]}", headers={"Cookie": ""})

    assert response.status_code == 200


def test_without_the_sdk_the_api_does_not_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(api_app, "BROWSER_SDK", tmp_path / "firebase")

    with pytest.raises(BrowserSdkMissing, match="make install"):
        assemble_api()
