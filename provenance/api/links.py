"""The addresses of the pages, in one place: what pages, pictures and reports link to."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode


def artifact_href(uri: str, **params: Any) -> str:
    return "/ui/artifact?" + urlencode({"uri": uri, **{k: v for k, v in params.items() if v}})


def app_href(app_id: str) -> str:
    return f"/ui/app/{quote(app_id, safe='')}"


def user_href(name: str) -> str:
    return f"/ui/user/{quote(name, safe='')}"
