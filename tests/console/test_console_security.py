"""Attacks on the console, each against a real `orcon console` process and stack:
a caller without the printed token, a foreign Host (DNS rebinding), a cross-site form
(no CSRF token, or another Origin), hostile content from another agency, a non-loopback
bind; and what the console must never print (content)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from broker.hosting.stack import DevStack
from schemas import Category, IntelReport, Level, Narrative
from tests.support.console import RunningConsole

pytestmark = pytest.mark.timeout(120)
STATIC = Path(__file__).resolve().parents[2] / "clients" / "console"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _http(method: str, url: str, headers: dict[str, str] | None = None,
          form: dict[str, str] | None = None) -> Reply:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=20) as r:
            return Reply(r.status, {k.lower(): v for k, v in r.headers.items()},
                         r.read().decode())
    except urllib.error.HTTPError as e:
        return Reply(e.code, {k.lower(): v for k, v in e.headers.items()},
                     e.read().decode(errors="replace"))


async def http(method: str, url: str, headers: dict[str, str] | None = None,
               form: dict[str, str] | None = None) -> Reply:
    return await asyncio.to_thread(_http, method, url, headers, form)


async def _session(c: RunningConsole) -> str:
    r = await http("GET", c.login)
    assert r.status == 303, r
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    return cookie.split(";", 1)[0]


async def test_no_token_no_session_no_page(console: Any) -> None:
    c = await console("KH-AHTJP")
    assert (await http("GET", c.base + "/inbox")).status == 401
    assert (await http("GET", c.base + "/login?token=guess")).status == 403
    assert (await http("GET", c.base + "/login")).status == 403
    cookie = await _session(c)
    ok = await http("GET", c.base + "/inbox", {"Cookie": cookie})
    assert ok.status == 200 and "Inbox" in ok.body
    # Decrypted content must not be cached, scripts only from the console itself.
    assert ok.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in ok.headers["content-security-policy"]
    assert "unsafe-inline" not in ok.headers["content-security-policy"]
    assert ok.headers["x-frame-options"] == "DENY"
    forged = await http("GET", c.base + "/inbox", {"Cookie": "orcon_console=forged"})
    assert forged.status == 401


async def test_foreign_host_refused(console: Any) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host."""
    c = await console("KH-AHTJP")
    cookie = await _session(c)
    port = c.base.rsplit(":", 1)[1]
    r = await http("GET", c.base + "/inbox", {"Cookie": cookie, "Host": f"evil.example:{port}"})
    assert r.status == 400


async def test_cross_site_post_sends_nothing(console: Any) -> None:
    """A form on another site (no CSRF token, or another Origin) cannot send a message."""
    c = await console("TH-AHTD")
    cookie = await _session(c)
    form = {"kind": "intel_report", "b.title": "forged", "b.narrative.text": "forged",
            "b.narrative.lang": "en", "h.category": "a", "h.level": "RESTRICTED",
            "h.recipients": "KH-AHTJP"}
    assert (await http("POST", c.base + "/compose/send", {"Cookie": cookie}, form)).status \
        == 403
    wrong = {**form, "csrf": "0" * 64}
    assert (await http("POST", c.base + "/compose/send", {"Cookie": cookie}, wrong)).status \
        == 403
    page = await http("GET", c.base + "/compose", {"Cookie": cookie})
    token = page.body.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    evil = await http("POST", c.base + "/compose/send",
                      {"Cookie": cookie, "Origin": "http://evil.example"},
                      {**form, "csrf": token})
    assert evil.status == 403
    outbox = await http("GET", c.base + "/outbox", {"Cookie": cookie})
    assert "forged" not in outbox.body and "No sent message" in outbox.body
    # The same form with the session's token (and no foreign Origin) is sent: the refusals
    # above were the guard, not a broken form.
    sent = await http("POST", c.base + "/compose/send", {"Cookie": cookie},
                      {**form, "csrf": token})
    assert sent.status == 200 and "Sealed, signed and submitted" in sent.body, sent.body
    outbox = await http("GET", c.base + "/outbox", {"Cookie": cookie})
    assert "forged" in outbox.body


async def test_hostile_content_is_escaped_and_never_logged(
        console: Any, agency: Any, stack: DevStack) -> None:
    """Another agency's text is data: escaped on every page, absent from the logs."""
    th = await agency("TH-AHTD")
    title = '<script>alert("t")</script><img src=x onerror=alert(1)>'
    secret = "Informant LOTUS meets the boat at kilometre 12"
    body = IntelReport(title=title, narrative=Narrative(text=secret + " <b>bold</b>", lang="en"))
    sent = await th.send(body, category=Category.ROUTES, level=Level.RESTRICTED,
                         to=["KH-AHTJP"])
    assert sent.submitted
    c = await console("KH-AHTJP")
    cookie = await _session(c)
    loop = asyncio.get_running_loop()
    end = loop.time() + 20
    while True:
        page = await http("GET", f"{c.base}/m/{sent.header.id}", {"Cookie": cookie})
        if page.status == 200 or loop.time() > end:
            break
        await asyncio.sleep(0.5)
    assert page.status == 200, page.body
    assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;" in page.body
    assert "<script>alert" not in page.body and "<img src=x" not in page.body
    assert "&lt;b&gt;bold&lt;/b&gt;" in page.body
    listing = await http("GET", f"{c.base}/inbox?q=LOTUS", {"Cookie": cookie})
    assert "<script>alert" not in listing.body
    output = await c.stop()
    assert secret not in output and "LOTUS" not in output and "alert" not in output


def test_non_loopback_bind_refused(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "clients.cli.main", "console", "--data-dir", str(tmp_path),
         "--as", "KH-AHTJP", "--host", "0.0.0.0"],
        capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "not a loopback address" in run.stderr and "--allow-remote" in run.stderr


def test_pages_load_nothing_from_elsewhere() -> None:
    """No CDN: every script and stylesheet the templates name is served by the console,
    and the vendored htmx comes with its licence."""
    templates = "".join(p.read_text() for p in (STATIC / "templates").glob("*.html"))
    assert "http://" not in templates and "https://" not in templates and "//cdn" not in templates
    for ref in ("/static/htmx-2.0.11.min.js", "/static/console.js", "/static/console.css"):
        assert ref in templates
        assert (STATIC / "static" / ref.rsplit("/", 1)[1]).is_file()
    assert "Zero-Clause BSD" in (STATIC / "static" / "htmx-LICENSE.txt").read_text()
