"""What stands between the console and a hostile page or client: one ASGI middleware
(:class:`Guard`) in front of every route.

* **Host.** A request whose ``Host`` names anything but the console's own address (or a
  name the operator allowed with ``lake serve --allow-host``) is refused with 421: a page on
  ``attacker.example`` whose name was rebound to 127.0.0.1 (DNS rebinding) reaches no route.
* **Origin.** A request that changes something (any method but GET, HEAD, OPTIONS) must
  carry the ``X-Lake-Console: 1`` header, which a page of another site cannot add without a
  CORS preflight this server never grants, and when it names an ``Origin``, that origin's
  host must be an allowed one.
* **Bodies.** Every request body is counted while it streams, chunked or not: past
  ``max_body`` bytes the request is refused with 413 before more is read (the upload route,
  whose body is a file, enforces the dataset's own limit as the bytes arrive).
* **Headers.** Every answer carries a Content-Security-Policy without inline script
  (``script-src 'self'``, ``object-src 'none'``, ``frame-ancestors 'none'``; a run report,
  which the dataset page shows in a frame, may be framed by the console itself),
  ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``.

Refusals are JSON ``{"error": <code>, "message": <what and why>}`` like the API's others.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException

from lib.errors import LakeError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSRF_HEADER = "X-Lake-Console"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors {ancestors}")
FRAMEABLE_PREFIX = "/reports/"  # shown in the dataset page's frame


def content_security_policy(path: str) -> str:
    return _CSP.format(ancestors="'self'" if path.startswith(FRAMEABLE_PREFIX) else "'none'")


def host_name(value: str) -> str:
    """The host of a ``Host`` header or of an origin's netloc, lower case, without the port
    (``[::1]:8000`` -> ``::1``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class BodyTooLarge(HTTPException, LakeError):
    """The body of a request passed its limit while it streamed. An HTTP exception too, so
    that the framework's body parsing passes it on instead of calling it a parse error."""

    default_code = "request.too_large"

    def __init__(self, limit: int) -> None:
        message = (f"a request body over {limit} bytes; file bytes go to "
                   "PUT /uploads/{id}/content")
        HTTPException.__init__(self, 413, message)
        LakeError.__init__(self, message)


class Guard:
    """The console's checks on every request (see the module docstring). ``hosts``: the
    host names a request may address; ``max_body``: the bytes a body may hold, except on
    the routes ``streamed(method, path)`` names (they enforce their own limit)."""

    def __init__(self, app: ASGIApp, *, hosts: Collection[str], max_body: int,
                 streamed: Callable[[str, str], bool]) -> None:
        self.app = app
        self.hosts = frozenset(host_name(h) for h in hosts)
        self.max_body = max_body
        self.streamed = streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        refusal = self.refusal(method, headers)
        if refusal is not None:
            await _refuse(send, path, *refusal)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *_security_headers(path)]
            await send(message)

        if self.streamed(method, path):
            await self.app(scope, receive, send_with_headers)
            return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _refuse(send, path, *self._too_large())
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        try:
            await self.app(scope, bounded, send_with_headers)
        except BodyTooLarge:
            if started:  # nothing better to do than close the connection
                raise
            await _refuse(send, path, *self._too_large())

    def refusal(self, method: str, headers: dict[str, str]) -> tuple[int, str, str] | None:
        host = host_name(headers.get("host", ""))
        if host not in self.hosts:
            return (421, "request.host", f"this console answers to {', '.join(sorted(self.hosts))}"
                    f", not to host {host[:100]!r}; to reach it by another name, start it with "
                    f"lake serve --allow-host NAME")
        if method in SAFE_METHODS:
            return None
        if headers.get(CSRF_HEADER.lower()) != "1":
            return (403, "request.cross_site", f"a request that changes something must carry "
                    f"the {CSRF_HEADER} header (the console's pages send it; other sites "
                    "cannot)")
        origin = headers.get("origin")
        if origin is not None and host_name(urlsplit(origin).netloc) not in self.hosts:
            return (403, "request.cross_site", f"a request from origin {origin[:100]!r} may not "
                    "change anything here: only the console's own pages may")
        return None

    def _too_large(self) -> tuple[int, str, str]:
        exc = BodyTooLarge(self.max_body)
        return exc.status_code, exc.code, exc.detail


def _security_headers(path: str) -> list[tuple[bytes, bytes]]:
    return [(b"content-security-policy", content_security_policy(path).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer")]


async def _refuse(send: Send, path: str, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), *_security_headers(path)]})
    await send({"type": "http.response.body", "body": body})
