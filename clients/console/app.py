"""The console's pages and actions (Starlette, Jinja2 with autoescaping, htmx).

Every action goes through the SDK: `Holder` acts (acknowledge, use, consent, forward,
reply, send), `AgencyClient.resolve` previews recipients, `schemas.validate_json`
validates. A refusal is shown with the rule that decided it and the sentence the SDK or
the broker gave; nothing here decides what is allowed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import structlog
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import schemas
from clients.console import formspec as fs
from clients.console.desk import STATES, AuditDesk, Desk, restrictions_in_words
from clients.console.security import (
    COOKIE,
    CSRF_FIELD,
    Guard,
    Sessions,
    csrf_protected,
)
from clients.sdk.alerts import restriction_summary
from clients.sdk.holder import LifecycleError, UseRefused
from schemas.codes import ConsentScope, Purpose, UseKind
from schemas.restrictions import TLP_PRESETS

log = structlog.get_logger("orcon.console")
STATIC = Path(__file__).parent / "static"
MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# The report carries its own inline CSS, JS and SVG (broker/audit/report.py) and forbids
# every network load itself; this is its own policy, for that one page.
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
              "img-src data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'")

env = Environment(loader=PackageLoader("clients.console", "templates"),
                  autoescape=select_autoescape(default=True, default_for_string=True),
                  trim_blocks=True, lstrip_blocks=True)
env.filters["t"] = lambda d: f"{d:%Y-%m-%d %H:%M}" if d else "—"
env.filters["words"] = lambda s: str(s).replace("_", " ")
env.globals["summary"] = restriction_summary


def _tlp_words() -> dict[str, str]:
    """What each TLP preset means and which restrictions it switches on (never off)."""
    out = {}
    for t in schemas.TLP:
        meaning = restrictions_in_words(schemas.Restrictions(tlp=t), "")[0][1]
        meaning = meaning.split(", ", 1)[-1]
        preset = TLP_PRESETS[t]
        on = [f.replace("_", " ") for f in ("no_onward_dissemination", "no_public_disclosure",
                                            "not_to_suspects", "consult_before_action")
              if getattr(preset, f)]
        out[str(t)] = meaning + (f" Switches on: {', '.join(on)}." if on else "")
    return out


class Console:
    def __init__(self, desk: Desk | AuditDesk, sessions: Sessions) -> None:
        self.desk = desk
        self.sessions = sessions

    # ---- rendering ------------------------------------------------------------------------

    def page(self, request: Request, template: str, status: int = 200,
             **context: Any) -> HTMLResponse:
        sid = request.cookies.get(COOKIE) or ""
        desk = self.desk
        ctx = {
            "agency": desk.agency,
            "auditor": isinstance(desk, AuditDesk),
            "roles": desk.roles if isinstance(desk, Desk) else ["auditor"],
            "csrf": self.sessions.csrf(sid) if sid else "",
            "csrf_field": CSRF_FIELD,
            "path": request.url.path,
            **context,
        }
        return HTMLResponse(env.get_template(template).render(**ctx), status_code=status)

    @property
    def agency_desk(self) -> Desk:
        assert isinstance(self.desk, Desk)
        return self.desk

    # ---- lists ----------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/audit" if isinstance(self.desk, AuditDesk) else "/inbox")

    async def listing(self, request: Request) -> Response:
        direction = "in" if request.url.path == "/inbox" else "out"
        p = request.query_params
        filters = {k: p.get(k, "") for k in ("q", "kind", "state", "level", "tlp", "urgency")}
        try:
            views = self.agency_desk.messages(direction, **filters)
        except LifecycleError as exc:  # a filter value outside its vocabulary
            return self.page(request, "error.html", 400, error=exc)
        template = "_list.html" if request.headers.get("hx-request") == "true" and \
            request.headers.get("hx-target") == "list" else "list.html"
        return self.page(request, template, views=views, direction=direction,
                         filters=filters, states=STATES, kinds=fs.composable_kinds(),
                         levels=[str(v) for v in schemas.Level],
                         tlps=[str(v) for v in schemas.TLP],
                         urgencies=[str(v) for v in schemas.Urgency])

    # ---- one message ----------------------------------------------------------------------

    def _id(self, request: Request) -> str:
        mid = str(request.path_params["mid"])
        if not MESSAGE_ID.match(mid):
            raise LifecycleError("message.id", "not a message id")
        return mid

    async def message(self, request: Request, **extra: Any) -> Response:
        d = self.agency_desk
        try:
            view, related = d.message(self._id(request))
        except LifecycleError as exc:
            return self.page(request, "error.html", 404, error=exc)
        if view.row.direction == "in" and not view.row.acked and "first_open" not in extra:
            # Reading acknowledges the restrictions (signed, audited), as `orcon inbox`
            # does: the page below is what the officer has then seen.
            async with d.lock:
                try:
                    await d.holder.open(view.row.id)
                except Exception as exc:  # shown; the Acknowledge button stays
                    log.warning("console_ack_failed", error=type(exc).__name__)
                    extra["refusal"] = LifecycleError(type(exc).__name__, str(exc))
            view, related = d.message(view.row.id)
        words = restrictions_in_words(view.row.restrictions, view.header.sender)
        body = msgspec.to_builtins(view.row.body)
        return self.page(request, "message.html", v=view, related=related, words=words,
                         body=body, purposes=[str(p) for p in Purpose],
                         uses=[str(u) for u in UseKind],
                         scopes=[str(s) for s in ConsentScope],
                         parties=d.parties(), **extra)

    async def _act(self, request: Request, form: FormData, what: str) -> Response:
        d = self.agency_desk
        try:
            mid = self._id(request)
        except LifecycleError as exc:
            return self.page(request, "error.html", 404, error=exc)
        done: str | None = None
        refusal: LifecycleError | None = None
        async with d.lock:
            try:
                if what == "ack":
                    await d.holder.open(mid)
                    done = "Acknowledged: the originator's restrictions bind this agency."
                elif what == "use":
                    kind = UseKind(str(form.get("use") or UseKind.ANALYSIS))
                    sent = await d.holder.use(
                        mid, Purpose(str(form.get("purpose"))), note=str(form.get("note") or "")
                        or None, use=kind, evidential=bool(form.get("evidential")))
                    done = f"Use declared ({kind}, signed and audited): {sent.id}"
                elif what == "consent":
                    action = ConsentScope(str(form.get("action")))
                    sent = await d.holder.request_consent(
                        mid, action, to=str(form.get("to") or "") or None,
                        justification=str(form.get("justification") or "").strip()
                        or "(no justification given)")
                    done = f"Consent requested from the originator: {sent.id}"
                elif what == "forward":
                    to = str(form.get("to") or "")
                    outcome = await d.holder.forward(mid, to)
                    done = f"Forwarded to {', '.join(outcome.delivered)}."
            except LifecycleError as exc:
                refusal = exc
            except Exception as exc:  # shown to the officer; only its type is logged
                log.warning("console_act_failed", act=what, error=type(exc).__name__)
                refusal = LifecycleError(type(exc).__name__, str(exc))
        return await self.message(request, done=done, refusal=refusal,
                                  refused_use=isinstance(refusal, UseRefused),
                                  first_open=True)

    # ---- compose --------------------------------------------------------------------------

    async def compose(self, request: Request) -> Response:
        d = self.agency_desk
        kinds = fs.composable_kinds()
        kind = request.query_params.get("kind", "intel_report")
        if kind not in kinds:
            kind = "intel_report"
        reply_to = request.query_params.get("reply_to", "")
        original = None
        if reply_to and MESSAGE_ID.match(reply_to):
            try:
                original = d.holder.get(reply_to).header
                kind = "reply"
            except LifecycleError:
                original = None
        prefill: dict[str, Any] = {}
        if original is not None:
            # A reply goes back to the requester, at the request's category and level.
            prefill = {"h.recipients": [original.sender], "h.category": str(original.category),
                       "h.level": str(original.level)}
        return self.page(request, "compose.html", kind=kind, kinds=kinds, prefill=prefill,
                         body_form=fs.body_form(kind), header_form=fs.header_form(),
                         parties=d.parties(), original=original,
                         tlp_words=_tlp_words())

    def _document(self, form: FormData) -> tuple[str, dict[str, Any], dict[str, Any]]:
        kind = str(form.get("kind") or "")
        if kind not in fs.composable_kinds():
            raise LifecycleError("kind", f"unknown kind {kind!r}")
        values = fs.FormValues([(k, str(v)) for k, v in form.multi_items()
                                if isinstance(v, str)])
        bform, hform = fs.body_form(kind), fs.header_form()
        body = fs.collect(bform, values, fs.item_builder(kind)) or {}
        header = fs.collect(hform, values, fs.item_builder(None)) or {}
        return kind, body, header

    def _header_doc(self, kind: str, header: dict[str, Any], form: FormData) -> dict[str, Any]:
        c = self.agency_desk.holder.client
        now = c.clock()
        doc = {"v": schemas.SCHEMA_VERSION, "id": schemas.new_message_id(now), "kind": kind,
               "sender": c.agency, "sender_key": c.identity.signing_key_id,
               "created_at": now.isoformat(), **header}
        for k in ("in_reply_to", "thread"):
            v = str(form.get(k) or "")
            if v and MESSAGE_ID.match(v):
                doc[k] = v
        return doc

    async def check(self, request: Request, form: FormData) -> Response:
        """Validation as you type, and who would receive: nothing is sealed here."""
        try:
            kind, body, header = self._document(form)
        except LifecycleError as exc:
            return self.page(request, "_checks.html", errors=[], preview=None,
                             preview_error=str(exc), fields={})
        hdoc = self._header_doc(kind, header, form)
        errors = schemas.validate_json(msgspec.json.encode({"header": hdoc, "body": body}))
        preview, preview_error = None, None
        header_errors = [e for e in errors if e.path.startswith("header")]
        if header_errors:
            preview_error = "fix the header fields above to see who would receive it"
        else:
            try:
                draft = schemas.decode_header_json(msgspec.json.encode(hdoc))
                preview = await self.agency_desk.holder.client.resolve(draft)
            except Exception as exc:  # any refusal of the draft is shown, never hidden
                preview_error = f"resolve failed: {exc}"
        return self.page(request, "_checks.html", errors=errors, preview=preview,
                         preview_error=preview_error, fields=fs.errors_by_field(errors))

    async def send(self, request: Request, form: FormData) -> Response:
        d = self.agency_desk
        try:
            kind, body_doc, header = self._document(form)
        except LifecycleError as exc:
            return self.page(request, "error.html", 400, error=exc)
        hdoc = self._header_doc(kind, header, form)
        errors = schemas.validate_json(msgspec.json.encode({"header": hdoc, "body": body_doc}))
        if errors:
            return self.page(request, "_checks.html", errors=errors, preview=None,
                             preview_error="not sent: fix the errors first",
                             fields=fs.errors_by_field(errors), show_all=True)
        h = schemas.decode_header_json(msgspec.json.encode(hdoc))
        body = schemas.decode_body_json(msgspec.json.encode(body_doc), h)
        extra: dict[str, Any] = {"urgency": h.urgency, "urgency_reasons": h.urgency_reasons,
                                 "topics": h.topics}
        if h.evaluation is not None:
            extra["evaluation"] = h.evaluation
        async with d.lock:
            try:
                if h.in_reply_to:
                    # Threaded; sent to the recipients shown in the form (prefilled with
                    # the requester), never silently to someone else. The store marks
                    # the request answered.
                    extra.update(in_reply_to=h.in_reply_to, thread=h.thread)
                sent = await d.holder.send(body, category=h.category, level=h.level,
                                           restrictions=h.restrictions, to=h.recipients,
                                           audience=h.audience, **extra)
            except Exception as exc:  # a refusal from the SDK or broker, shown in full
                log.warning("console_send_failed", error=type(exc).__name__)
                return self.page(request, "_checks.html", errors=[], preview=None,
                                 preview_error=f"not sent: {exc}", fields={})
            if not d.holder.store.has(sent.id):
                return self.page(request, "_checks.html", errors=[], preview=None,
                                 preview_error="not sent: no recipient is permitted",
                                 fields={})
            try:
                outcome: schemas.Outcome | None = await d.holder.wait_outcome(sent.id)
            except TimeoutError:
                outcome = None
        response = self.page(request, "_sent.html", sent=sent, outcome=outcome)
        return response

    async def item(self, request: Request) -> Response:
        """One more item of a list of objects (persons, routes...), built from the schema."""
        p = request.query_params
        kind = p.get("kind") or None
        if kind is not None and kind not in fs.composable_kinds():
            return HTMLResponse("unknown kind", status_code=400)
        path = p.get("path", "")
        root = fs.body_form(kind) if kind else fs.header_form()
        builder = fs.item_builder(kind)
        try:
            lst = fs.find(root, path, builder)
            index = int(p.get("index", "0"))
            variant = p.get("variant") or None
            if lst.widget not in ("list", "union") or index < 0 or index > 200:
                raise KeyError(path)
            if (variant is not None or lst.variants) and variant not in lst.variants:
                raise KeyError(variant)
            item = (builder.variant(lst, str(variant)) if lst.widget == "union"
                    else builder.item(lst, index, variant))
        except (KeyError, ValueError):
            return HTMLResponse("unknown field", status_code=400)
        return self.page(request, "_item.html", f=item, lst=lst, index=index, kind=kind or "",
                         parties=self.agency_desk.parties())

    # ---- consents, requests, alerts -------------------------------------------------------

    async def consents(self, request: Request, **extra: Any) -> Response:
        received, sent = self.agency_desk.consent_requests()
        return self.page(request, "consents.html", received=received, sent=sent, **extra)

    async def decide(self, request: Request, form: FormData) -> Response:
        d = self.agency_desk
        try:
            mid = self._id(request)
        except LifecycleError as exc:
            return self.page(request, "error.html", 404, error=exc)
        grant = request.url.path.endswith("/grant")
        conditions = [c.strip() for c in str(form.get("conditions") or "").splitlines()
                      if c.strip()]
        days = str(form.get("valid_days") or "").strip()
        until = datetime.now(UTC) + timedelta(days=int(days)) if days.isdigit() else None
        async with d.lock:
            try:
                if grant:
                    sent = await d.holder.grant(mid, conditions=conditions, valid_until=until)
                else:
                    sent = await d.holder.refuse(mid, str(form.get("reason") or "").strip()
                                                 or "refused by the originator")
                done = f"Consent {'granted' if grant else 'refused'}: {sent.id}"
                return await self.consents(request, done=done)
            except LifecycleError as exc:
                return await self.consents(request, refusal=exc)
            except Exception as exc:  # shown to the officer; only its type is logged
                log.warning("console_decision_failed", error=type(exc).__name__)
                return await self.consents(
                    request, refusal=LifecycleError(type(exc).__name__, str(exc)))

    async def requests(self, request: Request) -> Response:
        rows = self.agency_desk.holder.requests()
        return self.page(request, "requests.html", requests=rows)

    async def alerts(self, request: Request) -> Response:
        template = "_alerts.html" if request.headers.get("hx-request") else "alerts.html"
        return self.page(request, template, alerts=self.agency_desk.alerts())

    async def events(self, request: Request) -> Response:
        """Server-sent events: the ids of what arrived (never content)."""
        d = self.agency_desk
        q = d.listen()

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b": connected\n\n"
                while True:
                    try:
                        event, mid = await asyncio.wait_for(q.get(), timeout=15)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    yield f"event: {event}\ndata: {mid}\n\n".encode()
            finally:
                d.unlisten(q)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})

    # ---- auditor --------------------------------------------------------------------------

    async def audit(self, request: Request) -> Response:
        assert isinstance(self.desk, AuditDesk)
        return self.page(request, "audit.html", **self.desk.summary())

    async def audit_fetch(self, request: Request, form: FormData) -> Response:
        assert isinstance(self.desk, AuditDesk)
        error = None
        try:
            await self.desk.fetch_and_verify()
        except Exception as exc:  # the auditor sees why; only the type is logged
            log.warning("console_audit_fetch_failed", error=type(exc).__name__)
            error = f"{type(exc).__name__}: {exc}"
        return self.page(request, "audit.html", error=error, **self.desk.summary())

    async def audit_report(self, request: Request) -> Response:
        assert isinstance(self.desk, AuditDesk)
        try:
            html = await self.desk.report()
        except LookupError as exc:
            return self.page(request, "error.html", 409, error=exc)
        return HTMLResponse(html)


def create_app(desk: Desk | AuditDesk, sessions: Sessions, hosts: set[str]) -> Starlette:
    c = Console(desk, sessions)
    post = csrf_protected(sessions)
    routes: list[Route | Mount] = [
        Route("/", c.home),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    if isinstance(desk, AuditDesk):
        routes += [
            Route("/audit", c.audit),
            Route("/audit/fetch", post(c.audit_fetch), methods=["POST"]),
            Route("/audit/report", c.audit_report),
        ]
    else:
        async def act_ack(r: Request, f: FormData) -> Response:
            return await c._act(r, f, "ack")

        async def act_use(r: Request, f: FormData) -> Response:
            return await c._act(r, f, "use")

        async def act_consent(r: Request, f: FormData) -> Response:
            return await c._act(r, f, "consent")

        async def act_forward(r: Request, f: FormData) -> Response:
            return await c._act(r, f, "forward")

        routes += [
            Route("/inbox", c.listing),
            Route("/outbox", c.listing),
            Route("/m/{mid}", c.message),
            Route("/m/{mid}/ack", post(act_ack), methods=["POST"]),
            Route("/m/{mid}/use", post(act_use), methods=["POST"]),
            Route("/m/{mid}/consent", post(act_consent), methods=["POST"]),
            Route("/m/{mid}/forward", post(act_forward), methods=["POST"]),
            Route("/compose", c.compose),
            Route("/compose/check", post(c.check), methods=["POST"]),
            Route("/compose/send", post(c.send), methods=["POST"]),
            Route("/compose/item", c.item),
            Route("/consents", c.consents),
            Route("/consents/{mid}/grant", post(c.decide), methods=["POST"]),
            Route("/consents/{mid}/refuse", post(c.decide), methods=["POST"]),
            Route("/requests", c.requests),
            Route("/alerts", c.alerts),
            Route("/events", c.events),
        ]
    app = Starlette(routes=routes)
    return Guard(app, sessions, hosts, {"/audit/report": REPORT_CSP})  # type: ignore[return-value]
