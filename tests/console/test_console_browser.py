"""The console in a real browser, against a real stack (nats-server, broker, Cedar, audit
sequencer) and real `orcon console` processes:

TH-AHTD composes a report with an exclusion and sees MM refused in the preview, sends;
KH-AHTJP opens it and sees the restrictions first, declares a use that is refused and
requests consent; TH-AHTD grants it; the use then succeeds; an auditor verifies the log.

Every page must load without a browser console error, have a name for every control in
the accessibility tree, and work from the keyboard; each screen is kept as a screenshot
in tests/console/artifacts/.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas import Category, Level, examples
from tests.support.console import RunningConsole

pytestmark = pytest.mark.timeout(300)

CONTROL_ROLES = {"textbox", "searchbox", "combobox", "checkbox", "radio", "spinbutton",
                 "button", "listbox", "slider", "switch"}


class Watched:
    """A page whose console errors and uncaught exceptions are recorded."""

    def __init__(self, page: Any, console: RunningConsole, shots: Path) -> None:
        self.page = page
        self.console = console
        self.shots = shots
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"{console.agency}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"{console.agency}: {e}"))

    async def go(self, path: str) -> None:
        await self.page.goto(self.console.base + path)

    async def shot(self, name: str) -> None:
        await self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    async def unnamed_controls(self) -> list[str]:
        """Controls without an accessible name, read from Chromium's accessibility tree."""
        cdp = await self.page.context.new_cdp_session(self.page)
        try:
            tree = await cdp.send("Accessibility.getFullAXTree")
        finally:
            await cdp.detach()
        out = []
        for node in tree["nodes"]:
            role = (node.get("role") or {}).get("value")
            if role not in CONTROL_ROLES or node.get("ignored"):
                continue
            name = str((node.get("name") or {}).get("value") or "").strip()
            if not name:
                out.append(f"{role} (backend node {node.get('backendDOMNodeId')})")
        return out


async def _until_true(page: Any, expression: str, timeout: float = 10.0) -> None:
    """Poll a JS expression from Python (the page's CSP forbids Playwright's own eval
    polling, which is as it should be)."""
    import asyncio

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await page.evaluate(expression):
        if loop.time() > end:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        await asyncio.sleep(0.05)


async def _settled(page: Any) -> None:
    """htmx has processed what it swapped in (a person clicks later than a test does)."""
    await _until_true(page, "!!window.htmx && document.readyState === 'complete' && "
                      "!document.querySelector('.htmx-request, .htmx-swapping, "
                      ".htmx-settling, .htmx-added')")


async def _open(browser: Any, console: RunningConsole, shots: Path) -> Watched:
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    w = Watched(page, console, shots)
    await page.goto(console.login)  # exchanges the printed token for a session cookie
    return w


async def _eventually(w: Watched, path: str, locator: str, timeout: float = 20.0) -> None:
    """Reload `path` until `locator` shows (deliveries arrive through the live sync)."""
    from playwright.async_api import expect

    loop_end = 0.0
    import asyncio

    loop = asyncio.get_running_loop()
    loop_end = loop.time() + timeout
    while True:
        await w.go(path)
        if await w.page.locator(locator).count():
            await expect(w.page.locator(locator).first).to_be_visible()
            return
        if loop.time() > loop_end:
            raise AssertionError(f"{w.console.agency}: {locator} not on {path}")
        await asyncio.sleep(0.5)


async def test_compose_refuse_consent_grant_use_audit(console: Any, browser: Any,
                                                     artifacts: Path) -> None:
    from playwright.async_api import expect

    th_c, kh_c, au_c = (await console("TH-AHTD"), await console("KH-AHTJP"),
                        await console("XX-AUDIT"))
    th, kh, au = (await _open(browser, th_c, artifacts), await _open(browser, kh_c, artifacts),
                  await _open(browser, au_c, artifacts))
    unnamed: dict[str, list[str]] = {}

    async def audit_page(w: Watched, name: str) -> None:
        await w.shot(name)
        missing = await w.unnamed_controls()
        if missing:
            unnamed[name] = missing

    # KH-AHTJP watches its inbox: the message must appear live (server-sent events).
    await kh.go("/inbox")
    await expect(kh.page.get_by_role("heading", name="Inbox")).to_be_visible()
    await audit_page(kh, "01-kh-inbox-empty")

    # ---- TH-AHTD composes -----------------------------------------------------------------
    p = th.page
    await th.go("/compose")
    await p.get_by_label("Title").fill("Mekong crossing at Chiang Saen")
    await p.locator("#f-b-narrative-text").fill("Boats leave Chiang Saen at night; "
                                                 "passengers are moved on by road.")
    # Validation as you type names the field and the rule (from the schemas).
    await p.locator("#f-b-narrative-lang").fill("EN!")
    checks = p.locator("#checks")
    await expect(checks).to_contain_text("bcp47", timeout=10_000)
    await expect(checks).to_contain_text("body.narrative.lang")
    await expect(p.locator("#f-b-narrative-lang-err")).to_contain_text("not a language tag")
    await expect(p.locator("#f-b-narrative-lang")).to_have_attribute("aria-invalid", "true")
    await audit_page(th, "02-th-compose-invalid")
    await p.locator("#f-b-narrative-lang").fill("en")
    await p.locator("#f-h-category").select_option("a")
    await p.locator("#f-h-level").select_option("CONFIDENTIAL")
    await p.locator("#f-h-audience").get_by_label("COMMIT", exact=True).check()
    await p.locator("#f-h-restrictions-exclude").get_by_label("MM", exact=True).check()
    await p.get_by_label("No evidential use").check()
    # The live preview comes from the broker's resolve, before anything is sealed.
    refused_mm = checks.locator("li[data-recipient='MM-ATIPD']")
    await expect(refused_mm).to_contain_text("restriction.exclude", timeout=10_000)
    await expect(refused_mm).to_contain_text("excluded by the sender")
    await expect(checks.locator(".permitted")).to_contain_text("KH-AHTJP")
    await expect(checks).to_contain_text("Valid")
    await expect(p.locator("#f-b-narrative-lang-err")).to_be_empty()
    await audit_page(th, "03-th-compose-preview")
    # Send from the keyboard.
    await p.locator("#send").focus()
    await p.keyboard.press("Enter")
    await expect(checks).to_contain_text("Sealed, signed and submitted", timeout=15_000)
    await expect(checks).to_contain_text("KH-AHTJP")
    message_id = (await checks.locator(".sent a code").inner_text()).strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]+", message_id)
    await expect(p.locator("#send")).to_be_disabled()  # no second copy by a second click
    await audit_page(th, "04-th-sent")

    # ---- KH-AHTJP reads it: restrictions first ------------------------------------------------
    row = kh.page.locator(f"#list a[href='/m/{message_id}']")
    await expect(row).to_be_visible(timeout=20_000)  # arrived without a reload
    await expect(kh.page.locator("#live")).to_contain_text("New message")
    await audit_page(kh, "05-kh-inbox-live")
    await row.click()
    page = kh.page
    restrictions = page.locator("section.restrictions")
    content = page.locator("section.content")
    await expect(restrictions).to_contain_text("Not as evidence without TH-AHTD's consent")
    r_box, c_box = await restrictions.bounding_box(), await content.bounding_box()
    assert r_box is not None and c_box is not None and r_box["y"] < c_box["y"]
    await expect(restrictions).to_contain_text("Acknowledged")
    await expect(content).to_contain_text("Boats leave Chiang Saen at night")
    await audit_page(kh, "06-kh-message")

    # A use the restrictions forbid: refused, explained with the restriction.
    await page.locator("#use-purpose").select_option("prosecution")
    await page.locator("#use-kind").select_option("evidence")
    await page.get_by_role("button", name="Declare use").click()
    refusal = page.locator("#refusal")
    await expect(refusal).to_contain_text("restriction.no_evidential_use", timeout=15_000)
    await expect(refusal).to_contain_text("Not as evidence without TH-AHTD's consent")
    await audit_page(kh, "07-kh-use-refused")

    # Ask for consent (the form is preset to the scope the refusal named), by keyboard.
    await expect(page.locator("#consent-action")).to_have_value("evidential_use")
    await page.locator("#consent-why").fill("Needed as evidence at the trial in Phnom Penh.")
    await page.get_by_role("button", name="Request consent").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator(".notice.ok")).to_contain_text("Consent requested",
                                                             timeout=15_000)
    await expect(page.locator(".state.big")).to_have_text("consent pending")

    # ---- TH-AHTD decides as originator --------------------------------------------------
    await _eventually(th, "/consents", "form[action$='/grant']")
    await expect(th.page.locator("article.consent")).to_contain_text("evidential use")
    await expect(th.page.locator("article.consent")).to_contain_text("trial in Phnom Penh")
    await audit_page(th, "08-th-consents")
    await th.page.locator("article.consent textarea").fill("Disclose only to the trial court.")
    await th.page.get_by_role("button", name="Grant").click()
    await expect(th.page.locator(".notice.ok")).to_contain_text("Consent granted",
                                                                timeout=15_000)
    await audit_page(th, "09-th-granted")

    # ---- KH-AHTJP: the same use now succeeds ------------------------------------------------
    await _eventually(kh, f"/m/{message_id}", "td:text('consent decision')")
    await page.locator("#use-purpose").select_option("prosecution")
    await page.locator("#use-kind").select_option("evidence")
    await page.get_by_role("button", name="Declare use").click()
    await expect(page.locator(".notice.ok")).to_contain_text("Use declared", timeout=15_000)
    await expect(page.locator("#refusal")).to_have_count(0)
    await audit_page(kh, "10-kh-use-declared")

    # Forwarding to an agency below the level: the broker refuses and says why.
    await page.locator("#fwd-to").select_option("LA-MPS")
    await page.get_by_role("button", name="Forward").click()
    await expect(page.locator("#refusal")).to_contain_text("restriction.clearance",
                                                           timeout=15_000)
    await expect(page.locator("#refusal")).to_contain_text("LA-MPS")

    # Search reaches the decrypted content, not only titles.
    await kh.go("/inbox")
    await kh.page.get_by_role("searchbox", name="Search").fill("passengers are moved")
    await expect(kh.page.locator("#list tbody tr")).to_have_count(1)
    await kh.page.get_by_role("searchbox", name="Search").fill("no such words anywhere")
    await expect(kh.page.locator("#list")).to_contain_text("No received message matches")
    # Decrypted pages and search words are never kept in the browser (htmx's history
    # records included), after a live search and after a load.
    storage = "sessionStorage.length + localStorage.length"
    await _until_true(kh.page, f"{storage} === 0", timeout=5.0)
    await kh.go("/inbox")
    assert await kh.page.evaluate(storage) == 0, "the browser stored console content"

    # Outbox and requests, for the record of screens.
    await th.go("/outbox")
    await expect(th.page.locator(f"#list a[href='/m/{message_id}']")).to_be_visible()
    await expect(th.page.locator("#list")).to_contain_text("acknowledged by 1 of 5")
    await expect(th.page.locator("#list")).to_contain_text("used by KH-AHTJP")
    await audit_page(th, "11-th-outbox")

    # ---- the auditor verifies the log -------------------------------------------------------
    await au.go("/audit")
    await au.page.get_by_role("button", name="Fetch and verify").click()
    verdict = au.page.locator("#verdict")
    await expect(verdict).to_contain_text("Log verified", timeout=30_000)
    await audit_page(au, "12-auditor-verified")
    await au.page.get_by_role("link", name="Open the report").click()
    await expect(au.page.locator("svg").first).to_be_visible()
    # The log shows the consent granted and the evidential use it allowed.
    await expect(au.page.locator("body")).to_contain_text("1 requests: 1 granted")
    await expect(au.page.locator("body")).to_contain_text("evidential: 1")
    await au.shot("13-auditor-report")

    # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    await kh.go("/inbox")
    await kh.page.keyboard.press("Tab")
    focused = await kh.page.evaluate("document.activeElement.textContent")
    assert focused.strip() == "Skip to content"

    assert unnamed == {}, f"controls without an accessible name: {unnamed}"
    errors = th.errors + kh.errors + au.errors
    assert errors == [], f"browser console errors: {errors}"


async def test_alert_live_for_focal_point_then_reply(console: Any, browser: Any,
                                                     artifacts: Path, agency: Any) -> None:
    """A kind picked from the list, an item added to a list of the schema (a person), an
    urgent alert arriving live on a focal point's alerts page, and a threaded reply."""
    from playwright.async_api import expect

    th_c, fp_c = await console("TH-AHTD"), await console("TH-BLO-CHIANGSAEN")
    th, fp = await _open(browser, th_c, artifacts), await _open(browser, fp_c, artifacts)
    await fp.go("/alerts")
    await expect(fp.page.get_by_role("heading", name="Alerts")).to_be_visible()

    p = th.page
    await th.go("/compose")
    await p.get_by_label("Kind of message").select_option("alert")
    await expect(p.get_by_role("heading", name="Compose alert")).to_be_visible()
    await _settled(p)
    await p.locator("#f-b-type").select_option("person_information")
    await p.get_by_label("Title").fill("Facilitator expected at the pier")
    await p.locator("#f-b-narrative-text").fill("Expected tonight with six passengers.")
    await p.locator("#f-b-narrative-lang").fill("en")
    await p.get_by_role("button", name="Add person").click()
    await p.locator("#f-b-persons-0-ref").fill("p1")
    await _settled(p)
    await p.get_by_role("button", name="Add person").click()  # a second, then removed
    await p.locator("#f-b-persons-1-ref").fill("p2")
    await p.get_by_role("button", name="Remove person 2").click()
    await expect(p.locator("#f-b-persons-1-ref")).to_have_count(0)
    await p.locator("#f-b-persons-0-roles").get_by_label("facilitator").check()
    checks = p.locator("#checks")
    # The schema's cross-field rule, named: a person must be identifiable.
    await expect(checks).to_contain_text("identifiable", timeout=10_000)
    await p.locator("#f-b-persons-0-aliases").fill("Captain Noi")
    await p.locator("#f-h-recipients").get_by_label("TH-BLO-CHIANGSAEN").check()
    await p.locator("#f-h-category").select_option("a")
    await p.locator("#f-h-level").select_option("RESTRICTED")
    await p.locator("#f-h-urgency").select_option("urgent")
    await p.locator("#f-h-urgency_reasons").get_by_label("risk to victim").check()
    await expect(checks.locator(".permitted")).to_contain_text("TH-BLO-CHIANGSAEN",
                                                               timeout=10_000)
    await expect(checks).to_contain_text("Valid")
    await th.shot("20-th-compose-alert")
    await p.locator("#send").click()
    await expect(checks).to_contain_text("Sealed, signed and submitted", timeout=15_000)
    alert_id = (await checks.locator(".sent a code").inner_text()).strip()

    # Live on the focal point's alerts page (server-sent events), no reload.
    live = fp.page.locator(f"#alerts-list a[href='/m/{alert_id}']")
    await expect(live).to_be_visible(timeout=20_000)
    await expect(fp.page.locator("#alerts-list li.urg-urgent")).to_have_count(1)
    await expect(fp.page.locator("#alerts-list")).to_contain_text("Restrictions: none")
    await fp.shot("21-fp-alert-live")
    await live.click()
    await expect(fp.page.locator("section.content")).to_contain_text("Captain Noi")
    await fp.page.get_by_role("link", name="Reply").click()
    rp = fp.page
    await expect(rp.get_by_role("heading", name=re.compile("Compose reply"))).to_be_visible()
    await rp.locator("#f-b-status").select_option("answered")
    await expect(rp.locator("#checks .permitted")).to_contain_text("TH-AHTD", timeout=10_000)
    await fp.shot("22-fp-compose-reply")
    await rp.locator("#send").click()
    await expect(rp.locator("#checks")).to_contain_text("Sealed, signed and submitted",
                                                        timeout=15_000)

    # The reply reaches TH-AHTD threaded to its alert.
    await _eventually(th, "/inbox", "#list td:has-text('TH-BLO-CHIANGSAEN')")
    await th.page.locator("#list a").first.click()
    await expect(th.page.locator(".meta")).to_contain_text("reply from")
    await expect(th.page.locator(".meta")).to_contain_text(f"in reply to {alert_id}")
    await th.shot("23-th-reply")
    missing = await th.unnamed_controls() + await fp.unnamed_controls()
    # A request sent by the SDK shows on the focal point's requests page with its deadline.
    client = await agency("TH-AHTD")
    due = datetime.now(UTC) + timedelta(days=2)
    request = msgspec.structs.replace(examples.information_request(), respond_by=due)
    sent = await client.send(request, category=Category.ROUTES, level=Level.RESTRICTED,
                             to=["TH-BLO-CHIANGSAEN"])
    assert sent.submitted
    # In the table: the live notice (server-sent events) links the new message too, and
    # may appear on a page rendered before the request was synced.
    await _eventually(fp, "/requests", f"table a[href='/m/{sent.header.id}']")
    await expect(fp.page.locator("table")).to_contain_text(f"{due:%Y-%m-%d %H:%M}")
    await expect(fp.page.locator("table")).to_contain_text("received")
    await fp.shot("24-fp-requests")
    # Answering it from the console clears the deadline on both sides.
    # The table's row: a live "new message" banner may link to the same message.
    await fp.page.locator("table").locator(f"a[href='/m/{sent.header.id}']").click()
    await expect(fp.page.locator(".deadline")).to_contain_text(f"{due:%Y-%m-%d %H:%M}")
    await fp.page.get_by_role("link", name="Reply").click()
    await fp.page.locator("#f-b-status").select_option("no_record")
    await expect(fp.page.locator("#checks .permitted")).to_contain_text("TH-AHTD",
                                                                       timeout=10_000)
    await fp.page.locator("#send").click()
    await expect(fp.page.locator("#checks")).to_contain_text("Sealed, signed and submitted",
                                                             timeout=15_000)
    await fp.go("/requests")
    answered = fp.page.locator(f"tr:has(a[href='/m/{sent.header.id}']) td").last
    await expect(answered).not_to_have_text("no")
    missing += await fp.unnamed_controls()
    assert missing == []
    assert th.errors + fp.errors == []
