"""The console's guard: who may talk to it, and what its pages may load.

- Host: only the names the console was bound to are accepted, so a web page elsewhere
  cannot reach it through DNS rebinding.
- Session: the console prints a one-time URL with a random token; opening it sets an
  HttpOnly, SameSite=Strict cookie. Another local user or a page in the same browser
  without the token gets nothing.
- CSRF: every state-changing request carries a token derived from the session (htmx
  sends it as a header, plain forms as a field) and, when the browser says where it comes
  from, an Origin equal to the console's own.
- Headers: a Content-Security-Policy allowing only the console's own scripts and styles
  (nothing from a CDN, no inline code), no caching (pages hold decrypted content), no
  referrer, no framing.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from hashlib import sha256
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "orcon_console"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


class Sessions:
    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(32)  # printed once, in the login URL
        self._secret = secrets.token_bytes(32)
        self._live: set[str] = set()

    def login(self, token: str) -> str | None:
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return None
        sid = secrets.token_urlsafe(32)
        self._live.add(sid)
        return sid

    def valid(self, sid: str | None) -> bool:
        return sid is not None and sid in self._live

    def csrf(self, sid: str) -> str:
        return hmac.new(self._secret, sid.encode(), sha256).hexdigest()

    def csrf_ok(self, sid: str | None, value: str | None) -> bool:
        if sid is None or not value:
            return False
        return hmac.compare_digest(self.csrf(sid), value)


class Guard:
    """ASGI middleware: host check, session, security headers."""

    def __init__(self, app: ASGIApp, sessions: Sessions, hosts: set[str],
                 csp_overrides: dict[str, str] | None = None) -> None:
        self.app = app
        self.sessions = sessions
        self.hosts = hosts
        self.csp_overrides = csp_overrides or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = scope["path"]
        response: Response | None = None
        if request.headers.get("host", "") not in self.hosts:
            response = PlainTextResponse("unexpected Host header", status_code=400)
        elif path == "/login":
            sid = self.sessions.login(request.query_params.get("token", ""))
            if sid is None:
                response = PlainTextResponse("invalid or missing token: open the URL that "
                                             "`orcon console` printed", status_code=403)
            else:
                response = RedirectResponse("/", status_code=303)
                response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", path="/")
        elif not path.startswith("/static/") and not self.sessions.valid(
                request.cookies.get(COOKIE)):
            response = PlainTextResponse("not signed in: open the URL that `orcon console` "
                                         "printed", status_code=401)
        elif request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin is not None and origin.split("://", 1)[-1] not in self.hosts:
                response = PlainTextResponse("cross-origin request refused", status_code=403)
        csp = self.csp_overrides.get(path, CSP).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [*_HEADERS, (b"content-security-policy", csp)]
                message = {**message, "headers": headers}
            await send(message)

        if response is not None:
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


class CsrfError(Exception):
    pass


async def checked_form(request: Request, sessions: Sessions) -> FormData:
    """The posted form, once the CSRF token (header or field) matches the session."""
    form = await request.form()
    sid = request.cookies.get(COOKIE)
    token = request.headers.get(CSRF_HEADER) or str(form.get(CSRF_FIELD) or "")
    if not sessions.csrf_ok(sid, token):
        raise CsrfError()
    return form


Handler = Callable[[Request, FormData], Awaitable[Response]]


def csrf_protected(sessions: Sessions) -> Callable[[Handler], Callable[[Request], Awaitable[Any]]]:
    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Any]]:
        async def endpoint(request: Request) -> Response:
            try:
                form = await checked_form(request, sessions)
            except CsrfError:
                return PlainTextResponse("missing or wrong CSRF token", status_code=403)
            return await handler(request, form)
        endpoint.__name__ = handler.__name__
        return endpoint
    return wrap
