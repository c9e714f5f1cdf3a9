"""What every request and response goes through before any route sees it.

- `RequestGuard` (pure ASGI, outermost): the ``Host`` must be one this server is (loopback, the bound
  address, ``--public-url``'s host, ``server.allowed_hosts``): a page of another site that resolves its
  own name to 127.0.0.1 (DNS rebinding) gets nothing. A state-changing request (anything but GET, HEAD,
  OPTIONS) must come from this origin when the browser says where it comes from (``Origin``,
  ``Sec-Fetch-Site``), also under ``--no-auth``, where no token would stop a cross-site form. Request
  bodies are counted as they stream in and stopped at ``server.max_body_bytes`` (413), whatever
  ``Content-Length`` claims.
- `SecurityHeaders`: a strict Content-Security-Policy (scripts and styles from this origin only, no
  inline script, no framing), ``nosniff``, no referrer to other sites; ``Cache-Control: no-store`` on
  every answer but the static files (pages and API answers depend on who asks: after signing out, Back
  must not show them from the browser's cache).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provenance.errors import PayloadTooLarge

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def _host_name(value: str) -> str:
    """The host of a Host header, without the port ("[::1]:8750" → "::1")."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _port(value: str) -> str | None:
    """The port a Host header or an origin's authority names, if any ("[::1]:8750" → "8750")."""
    value = value.strip()
    tail = value[value.find("]") + 1:] if value.startswith("[") else value if value.count(":") == 1 else ""
    return tail.rsplit(":", 1)[1] if ":" in tail else None


async def _reject(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message, "status": status}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *HEADERS]})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str], max_body: int) -> None:
        self.app = app
        self.allowed = frozenset(h.strip("[]").lower() for h in allowed_hosts if h)
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = _host_name(headers.get("host", ""))
        if host not in self.allowed:
            await _reject(send, 403, "bad_host", f"this server does not answer to the host {host[:100]!r}")
            return
        if scope["method"] not in SAFE_METHODS and not self._same_origin(headers, scope):  # CSRF
            await _reject(send, 403, "bad_origin", "a state-changing request from another site is refused")
            return
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await _reject(send, 413, "too_large", f"the request body is over the {self.max_body} byte limit")
            return
        await self.app(scope, self._limited(receive, send), send)

    @staticmethod
    def _same_origin(headers: dict[str, str], scope: Scope) -> bool:
        """False when the browser says the request comes from another site. Browsers send ``Origin`` with
        every cross-origin POST (and ``Sec-Fetch-Site``); a client that sends neither is not a browser
        page, so it is no cross-site request (it still needs a token, unless --no-auth)."""
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return False
        origin = headers.get("origin")
        if origin is None:
            return True
        scheme, sep, rest = origin.partition("://")
        authority, host = rest.split("/", 1)[0], headers.get("host", "")
        if not sep or _host_name(authority) != _host_name(host):
            return False
        # the same port too: another server on this host is another origin (a Host without a port, as some
        # proxies send it, says nothing of the port)
        default = {"http": "80", "https": "443"}.get(scheme.strip().lower())
        return _port(host) is None or (_port(authority) or default) == _port(host)

    def _limited(self, receive: Receive, send: Send) -> Receive:
        seen = 0
        limit = self.max_body

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(limit)
            return message

        return limited


NO_STORE = (b"cache-control", b"no-store")
#: paths whose answers are the same for everyone (they may be cached)
PUBLIC_PREFIXES = ("/static/",)


class SecurityHeaders:
    """The headers on every response; ``on_status`` sees each response's status (the request metric)."""

    def __init__(self, app: ASGIApp, on_status: Callable[[int], None] | None = None) -> None:
        self.app = app
        self.on_status = on_status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = HEADERS if str(scope.get("path", "")).startswith(PUBLIC_PREFIXES) else [*HEADERS, NO_STORE]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                if self.on_status is not None:
                    self.on_status(message["status"])
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)


__all__ = ["CSP", "LOOPBACK_HOSTS", "RequestGuard", "SecurityHeaders"]
