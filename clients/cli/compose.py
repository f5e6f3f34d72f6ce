"""Composing from the command line: `orcon draft`, `orcon send` (every restriction and
header field, `--dry-run`) and `orcon reply`."""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import typer

import schemas
from clients.cli.common import (
    INVALID,
    NOT_DONE,
    AsAgency,
    CliError,
    DataDir,
    Json,
    OptionError,
    console,
    emit,
    fail,
    with_holder,
)
from clients.cli.render import plain, refusals_table
from schemas.codes import ResponseTerm
from schemas.examples import EXAMPLES

if TYPE_CHECKING:
    from clients.sdk.holder import Holder

DraftKind = enum.StrEnum("DraftKind", {k: k for k in EXAMPLES})  # type: ignore[misc]


def draft(
    kind: Annotated[DraftKind, typer.Argument(help="the message kind", show_default=False)],
    out: Annotated[Path | None, typer.Option("-o", "--output", dir_okay=False,
                                             help="write here (default: stdout)")] = None,
) -> None:
    """Write a filled-in, valid example body of KIND to edit, then `orcon send --body`."""
    body = EXAMPLES[str(kind.value)]()
    text = msgspec.json.format(msgspec.json.encode(body), indent=2) + b"\n"
    if out is None:
        sys.stdout.write(text.decode())
        return
    try:
        out.write_bytes(text)
    except OSError as exc:
        raise fail(f"{out}: {exc.strerror}", INVALID) from None
    typer.echo(f"wrote {out}: a valid {kind.value} body; edit it, then "
               f"`orcon send --body {out} ...`", err=True)


def _when(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 instant with its zone: a naive time would be read in some zone the
    sender never chose, so it is refused rather than guessed."""
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option} {value!r} is not an ISO 8601 time "
                       "(e.g. 2026-07-01T00:00Z)", INVALID) from None
    if t.tzinfo is None:
        raise CliError(f"{option} {value!r} needs a time zone (e.g. {value}Z or "
                       f"{value}+07:00)", INVALID)
    return t


# The Europol 4x4 codes, from the schema's vocabularies: "B2", never "B+2" or "B02".
EVALUATION_CODES = frozenset(f"{s.value}{int(a)}" for s in schemas.SourceReliability
                             for a in schemas.InfoAccuracy)


def _evaluation(value: str | None) -> schemas.Evaluation | None:
    """A Europol 4x4 code as written in the handling codes (case aside): the whole value
    is one of the sixteen codes, or it is refused naming them."""
    if value is None:
        return None
    code = value.upper()
    if code not in EVALUATION_CODES:
        raise OptionError("--evaluation", value, choices=EVALUATION_CODES)
    return schemas.Evaluation(schemas.SourceReliability(code[0]),
                              schemas.InfoAccuracy(int(code[1])))


@dataclass
class Compose:
    """Everything `send` and `reply` set besides the body (options as given)."""

    category: schemas.Category | None = None
    level: schemas.Level | None = None
    to: list[str] = field(default_factory=list)
    audience: list[str] = field(default_factory=list)
    restrictions: dict[str, Any] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)
    respond_by: datetime | None = None


def _read_body(path: Path) -> schemas.Body:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}", INVALID) from None
    # Structure and content rules, every error at once (not only the first).
    return schemas.decode_body_json(data)


def _with_deadline(body: schemas.Body, respond_by: datetime | None) -> schemas.Body:
    if respond_by is None:
        return body
    if not hasattr(body, "respond_by"):
        kind = type(body).__struct_config__.tag
        raise CliError(f"--respond-by: a {kind} body is not a request and has no deadline "
                       "(requests: information_request, document_verification_request, "
                       "nationality_verification_request, vessel_request, mla_request, "
                       "extradition_request)", INVALID)
    return msgspec.structs.replace(body, respond_by=respond_by,
                                   response_term=ResponseTerm.BY_DATE)


def _outcome_doc(mid: str, *, dry_run: bool, permitted: list[str],
                 refused: list[schemas.Refusal], delivered: list[str] | None = None,
                 broker_refused: list[schemas.Refusal] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": mid, "dry_run": dry_run, "permitted": permitted,
                           "refused": msgspec.to_builtins(refused)}
    if not dry_run:
        doc["delivered"] = delivered or []
        doc["broker_refused"] = msgspec.to_builtins(broker_refused or [])
    return doc


async def _submit(h: Holder, body: schemas.Body, c: Compose, *, dry_run: bool,
                  as_json: bool) -> dict[str, Any]:
    """Resolve (and, unless a dry run, seal and submit); say who received it and why not."""
    client = h.client
    restrictions = schemas.Restrictions(**c.restrictions)
    kwargs: dict[str, Any] = {
        "category": c.category or schemas.Category.OTHER,
        "level": c.level or schemas.Level.RESTRICTED,
        "restrictions": restrictions, "to": c.to, "audience": c.audience, **c.header}
    if dry_run:
        d = client.checked_draft(body, **kwargs)  # the content rules, as `send` checks them
        reply = await client.resolve(d)
        doc = _outcome_doc(d.id, dry_run=True, permitted=list(reply.permitted),
                           refused=list(reply.refused))
        if not as_json:
            console.print(plain("dry run: would receive: "
                                + (", ".join(reply.permitted) or "nobody")))
            if reply.refused:
                console.print(refusals_table(reply.refused, "would be refused"))
            console.print("nothing was sealed or sent")
        if not reply.permitted:
            raise CliError("no recipient is permitted (see the refusals)", NOT_DONE, doc)
        return doc
    sent = await client.send(body, **kwargs)
    if not as_json:
        console.print(f"message {sent.header.id}")
        if sent.refused:
            console.print(refusals_table(sent.refused))
    if not sent.submitted:
        raise CliError("not sent: no recipient is permitted (see the refusals)", NOT_DONE,
                       _outcome_doc(sent.header.id, dry_run=False, permitted=[],
                                    refused=sent.refused))
    outcome = await client.wait_outcome(sent.header.id)
    if outcome.status == "rejected":
        raise CliError(f"not delivered: the broker rejected the message ({outcome.error})",
                       NOT_DONE)
    doc = _outcome_doc(sent.header.id, dry_run=False, permitted=list(sent.sealed_to),
                       refused=sent.refused, delivered=list(outcome.delivered),
                       broker_refused=list(outcome.refused))
    if not as_json:
        console.print(plain(f"delivered to: {', '.join(outcome.delivered) or 'nobody'}"))
        if outcome.refused:
            console.print(refusals_table(outcome.refused, "refused by the broker"))
    if not outcome.delivered:
        raise CliError("not delivered: the broker refused every recipient (see the "
                       "refusals)", NOT_DONE, doc)
    return doc


def _go(data_dir: Path, agency: str, body_file: Path, c: Compose, *, dry_run: bool,
        as_json: bool, in_reply_to: str | None = None) -> None:
    async def act(h: Holder) -> dict[str, Any]:
        body = _with_deadline(_read_body(body_file), c.respond_by)
        if in_reply_to is not None:
            orig = h.get(in_reply_to)  # LifecycleError store.unknown names the id
            if orig.direction != "in":
                raise CliError(f"{in_reply_to} is a message you sent; reply to one you "
                               "received", INVALID)
            oh = orig.header
            c.to = [oh.sender]
            c.header.setdefault("thread", oh.thread or oh.id)
            c.header["in_reply_to"] = oh.id
            c.category = c.category or schemas.Category(oh.category)
            c.level = c.level or schemas.Level(oh.level)
        return await _submit(h, body, c, dry_run=dry_run, as_json=as_json)

    doc = with_holder(data_dir, agency, act, as_json=as_json)
    if as_json:
        emit(doc)


# The options `send` and `reply` share: every restriction and header field.
Category = Annotated[schemas.Category | None, typer.Option(
    help="Art. 10(1) category (default: other; a reply: the request's)")]
LevelOpt = Annotated[schemas.Level | None, typer.Option(
    "--level", help="confidentiality level (default: RESTRICTED; a reply: the request's)")]
Names = list[str] | None


def _compose(*, category: schemas.Category | None, level: schemas.Level | None,
             to: Names, audience: Names, exclude: Names, release_to: Names, no_onward: bool,
             no_evidential: bool, no_public: bool, not_to_suspects: bool, consult: bool,
             tlp: schemas.TLP | None, purpose: list[schemas.Purpose] | None,
             expires_in_days: int | None, expires_at: str | None, not_before: str | None,
             destroy_after_days: int | None, condition: Names, condition_lang: str,
             urgency: schemas.Urgency | None, urgency_reason: list[schemas.UrgencyReason] | None,
             respond_by: str | None, in_reply_to: str | None, thread: str | None,
             route_country: Names, nationality: Names, document_type: Names,
             transport_mode: Names, language: Names, evaluation: str | None) -> Compose:
    if expires_in_days is not None and expires_at is not None:
        raise CliError("give --expires-in-days or --expires-at, not both", INVALID)
    expiry = _when(expires_at, "--expires-at")
    if expires_in_days is not None:
        expiry = datetime.now(UTC) + timedelta(days=expires_in_days)
    r: dict[str, Any] = {
        "exclude": exclude or [], "release_to": release_to or [],
        "no_onward_dissemination": no_onward, "no_evidential_use": no_evidential,
        "no_public_disclosure": no_public, "not_to_suspects": not_to_suspects,
        "consult_before_action": consult, "tlp": tlp, "purposes": purpose or [],
        "expires_at": expiry, "not_before": _when(not_before, "--not-before"),
        "destroy_after_days": destroy_after_days,
        "conditions": [schemas.Condition(text, condition_lang) for text in condition or []],
    }
    h: dict[str, Any] = {}
    if urgency is not None:
        h["urgency"] = urgency
    if urgency_reason:
        h["urgency_reasons"] = list(urgency_reason)
    if in_reply_to is not None:
        h["in_reply_to"] = in_reply_to
    if thread is not None:
        h["thread"] = thread
    topics = {"route_countries": route_country or [], "nationalities": nationality or [],
              "document_types": document_type or [], "transport_modes": transport_mode or []}
    if any(topics.values()):
        h["topics"] = schemas.Topics(**topics)
    if language:
        h["languages"] = list(language)
    ev = _evaluation(evaluation)
    if ev is not None:
        h["evaluation"] = ev
    return Compose(category=category, level=level, to=to or [], audience=audience or [],
                   restrictions=r, header=h, respond_by=_when(respond_by, "--respond-by"))


def send(
    data_dir: DataDir,
    as_agency: AsAgency,
    body_file: Annotated[Path, typer.Option("--body", help="JSON body (with its 'kind'); "
                                            "`orcon draft KIND` writes one")],
    category: Category = None,
    level: LevelOpt = None,
    to: Annotated[Names, typer.Option(help="named recipient (repeatable)")] = None,
    audience: Annotated[Names, typer.Option(help="group, country or ALL (repeatable)")] = None,
    exclude: Annotated[Names, typer.Option(help="never to this agency, country or group")]
    = None,
    release_to: Annotated[Names, typer.Option("--release-to",
                                              help="only to these (repeatable)")] = None,
    no_onward: Annotated[bool, typer.Option("--no-onward-dissemination")] = False,
    no_evidential: Annotated[bool, typer.Option("--no-evidential-use")] = False,
    no_public_disclosure: Annotated[bool, typer.Option("--no-public-disclosure")] = False,
    not_to_suspects: Annotated[bool, typer.Option("--not-to-suspects")] = False,
    consult_before_action: Annotated[bool, typer.Option("--consult-before-action")] = False,
    tlp: Annotated[schemas.TLP | None, typer.Option(help="TLP 2.0 label (a preset)")] = None,
    purpose: Annotated[list[schemas.Purpose] | None, typer.Option(
        "--purpose", help="a purpose the information may be used for (repeatable)")] = None,
    expires_in_days: Annotated[int | None, typer.Option(min=1)] = None,
    expires_at: Annotated[str | None, typer.Option(help="end of the use window (ISO 8601 "
                                                   "with zone)")] = None,
    not_before: Annotated[str | None, typer.Option(help="not to be used before (ISO 8601)")]
    = None,
    destroy_after_days: Annotated[int | None, typer.Option(
        min=1, max=36500, help="retention: destroy this many days after receipt")] = None,
    condition: Annotated[Names, typer.Option(help="a handling condition (repeatable)")] = None,
    condition_lang: Annotated[str, typer.Option(help="language of the conditions")] = "en",
    urgency: Annotated[schemas.Urgency | None, typer.Option()] = None,
    urgency_reason: Annotated[list[schemas.UrgencyReason] | None, typer.Option(
        help="why it is urgent (repeatable; urgent needs one)")] = None,
    respond_by: Annotated[str | None, typer.Option(
        help="a request's deadline (ISO 8601 with zone); sets response_term by_date")] = None,
    in_reply_to: Annotated[str | None, typer.Option(help="the message this answers")] = None,
    thread: Annotated[str | None, typer.Option(help="the thread's first message")] = None,
    route_country: Annotated[Names, typer.Option(help="topic for alert filters")] = None,
    nationality: Annotated[Names, typer.Option(help="topic for alert filters")] = None,
    document_type: Annotated[Names, typer.Option(help="topic (ICAO code, e.g. P)")] = None,
    transport_mode: Annotated[Names, typer.Option(help="land, sea, air, rail, foot, mixed")]
    = None,
    language: Annotated[Names, typer.Option(help="language of the content (repeatable)")]
    = None,
    evaluation: Annotated[str | None, typer.Option(help="Europol 4x4 code, e.g. B2")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="ask the broker who would receive it, and why not; seal nothing")]
    = False,
    as_json: Json = False,
) -> None:
    """Resolve, seal, sign and submit one message; print who received it and who not.

    Exit 1 when nobody received it; 2 when the body or an option breaks a rule (every
    error listed, nothing sealed)."""
    try:
        c = _compose(category=category, level=level, to=to, audience=audience,
                     exclude=exclude, release_to=release_to, no_onward=no_onward,
                     no_evidential=no_evidential, no_public=no_public_disclosure,
                     not_to_suspects=not_to_suspects, consult=consult_before_action, tlp=tlp,
                     purpose=purpose, expires_in_days=expires_in_days, expires_at=expires_at,
                     not_before=not_before, destroy_after_days=destroy_after_days,
                     condition=condition, condition_lang=condition_lang, urgency=urgency,
                     urgency_reason=urgency_reason, respond_by=respond_by,
                     in_reply_to=in_reply_to, thread=thread, route_country=route_country,
                     nationality=nationality, document_type=document_type,
                     transport_mode=transport_mode, language=language, evaluation=evaluation)
    except CliError as exc:
        raise exc.exit(as_json=as_json) from None
    _go(data_dir, as_agency, body_file, c, dry_run=dry_run, as_json=as_json)


def reply(
    data_dir: DataDir,
    as_agency: AsAgency,
    message_id: Annotated[str, typer.Argument(help="the message you answer (received)")],
    body_file: Annotated[Path, typer.Option("--body", help="JSON body, e.g. from "
                                            "`orcon draft reply`")],
    category: Category = None,
    level: LevelOpt = None,
    no_onward: Annotated[bool, typer.Option("--no-onward-dissemination")] = False,
    no_evidential: Annotated[bool, typer.Option("--no-evidential-use")] = False,
    tlp: Annotated[schemas.TLP | None, typer.Option()] = None,
    purpose: Annotated[list[schemas.Purpose] | None, typer.Option("--purpose")] = None,
    condition: Annotated[Names, typer.Option(help="a handling condition (repeatable)")] = None,
    condition_lang: Annotated[str, typer.Option()] = "en",
    urgency: Annotated[schemas.Urgency | None, typer.Option()] = None,
    urgency_reason: Annotated[list[schemas.UrgencyReason] | None, typer.Option()] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    as_json: Json = False,
) -> None:
    """Answer a message you received: sent to its sender, in reply to it, in its thread,
    at its level and category unless given."""
    try:
        c = _compose(category=category, level=level, to=None, audience=None, exclude=None,
                     release_to=None, no_onward=no_onward, no_evidential=no_evidential,
                     no_public=False, not_to_suspects=False, consult=False, tlp=tlp,
                     purpose=purpose, expires_in_days=None, expires_at=None, not_before=None,
                     destroy_after_days=None, condition=condition,
                     condition_lang=condition_lang, urgency=urgency,
                     urgency_reason=urgency_reason, respond_by=None, in_reply_to=None,
                     thread=None, route_country=None, nationality=None, document_type=None,
                     transport_mode=None, language=None, evaluation=None)
    except CliError as exc:
        raise exc.exit(as_json=as_json) from None
    _go(data_dir, as_agency, body_file, c, dry_run=dry_run, as_json=as_json,
        in_reply_to=message_id)


def register(app: typer.Typer) -> None:
    """Adds this module's commands to the main `orcon` app."""
    app.command("draft")(draft)
    app.command("send")(send)
    app.command("reply")(reply)
