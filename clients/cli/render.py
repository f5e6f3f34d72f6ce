"""How messages, outcomes and refusals look to a person (rich renderables).

Restrictions are shown above the content, in a box of their own: a liaison officer
must read the originator's conditions before the intelligence (Article 10(2)).

Everything that came from another agency (content, conditions, reasons quoting it) is
printed as `plain` Text, never as a str: rich would read a str as console markup, so a
sender could draw fake banners, hide text, plant terminal hyperlinks or crash the
command with an unbalanced tag. Control characters (terminal escapes) and bidirectional
overrides are shown as visible escapes for the same reason."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import msgspec
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

import schemas

# C0 controls but newline and tab, DEL, C1 controls (8-bit CSI/OSC), and the bidi
# embedding/override/isolate marks that reorder what a terminal shows.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def plain(text: str, style: str = "") -> Text:
    """Untrusted text for the terminal: never markup, never an escape sequence."""
    return Text(_UNSAFE.sub(_escape, text), style=style)


def restriction_lines(r: schemas.Restrictions) -> list[str]:
    lines: list[str] = []
    if r.tlp:
        lines.append(f"TLP:{r.tlp}")
    if r.purposes:
        lines.append("Use only for: " + ", ".join(str(p) for p in r.purposes))
    if r.no_evidential_use:
        lines.append("NO EVIDENTIAL USE in judicial proceedings without the originator's consent")
    if r.no_onward_dissemination:
        lines.append("NO ONWARD DISSEMINATION to any third party without consent")
    if r.release_to:
        lines.append("Releasable only to: " + ", ".join(r.release_to))
    if r.exclude:
        lines.append("Never to: " + ", ".join(r.exclude))
    if r.not_before:
        lines.append(f"Not to be used before {r.not_before:%Y-%m-%d %H:%M} UTC")
    if r.expires_at:
        lines.append(f"Use window closes {r.expires_at:%Y-%m-%d %H:%M} UTC")
    if r.destroy_after_days:
        lines.append(f"Destroy {r.destroy_after_days} days after receipt")
    if r.no_public_disclosure:
        lines.append("No public disclosure")
    if r.not_to_suspects:
        lines.append("Not to be shown to suspects")
    if r.consult_before_action:
        lines.append("Consult the originator before any executive action (arrest, raid)")
    for c in r.conditions:
        lines.append(f"Condition [{c.lang}]: {c.text}")
    return lines or ["No restrictions beyond the federation's agreements"]


def body_summary(body: schemas.Body) -> str:
    """Title and narrative opening: what a person scans first."""
    lines = [f"kind: {type(body).__struct_config__.tag}"]
    for name in ("title", "subject", "summary"):
        value = getattr(body, name, None)
        if isinstance(value, str):
            lines.append(f"{name}: {value}")
            break
    narrative = getattr(body, "narrative", None)
    text = getattr(narrative, "text", None)
    if isinstance(text, str):
        lines.append(text if len(text) <= 300 else text[:300] + "…")
    lines.append("(full content: orcon inbox)")
    return "\n".join(lines)


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _scalar(value: object) -> str | None:
    """A leaf as a person reads it; None when `value` is not a leaf."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M} UTC" if value.utcoffset() == timedelta(0) \
            else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, schemas.Narrative):
        return f"{value.text} [{value.lang}]"
    return None


def _section_lines(value: object, indent: str, out: list[str]) -> None:
    """A Struct's fields that differ from their defaults, one per line, nested
    structures indented under their label; list items numbered."""
    assert isinstance(value, msgspec.Struct)
    for f in msgspec.structs.fields(value):
        v = getattr(value, f.name)
        if v is None or v == f.default or (v == [] and f.default_factory is list):
            continue
        label = _label(f.name)
        leaf = _scalar(v)
        if leaf is not None:
            out.append(f"{indent}{label}: {leaf}")
        elif isinstance(v, list):
            leaves = [_scalar(x) for x in v]
            if all(x is not None for x in leaves):
                out.append(f"{indent}{label}: {', '.join(str(x) for x in leaves)}")
                continue
            out.append(f"{indent}{label}")
            for i, item in enumerate(v, 1):
                out.append(f"{indent}  {i}. {_struct_title(item)}")
                _section_lines(item, indent + "     ", out)
        elif isinstance(v, msgspec.Struct):
            out.append(f"{indent}{label}{_tag_suffix(v)}")
            _section_lines(v, indent + "  ", out)
        else:
            out.append(f"{indent}{label}: {v!r}")


def _tag_suffix(v: msgspec.Struct) -> str:
    tag = type(v).__struct_config__.tag
    return f" ({tag})" if isinstance(tag, str) else ""


def _struct_title(v: object) -> str:
    if isinstance(v, msgspec.Struct):
        tag = type(v).__struct_config__.tag
        if isinstance(tag, str):
            return tag.replace("_", " ")
        return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", type(v).__name__).capitalize()
    return ""


def body_sections(body: schemas.Body) -> str:
    """The body as readable sections (labels, nesting, numbered items), not JSON."""
    lines = [f"Kind: {type(body).__struct_config__.tag}"]
    _section_lines(body, "", lines)
    return "\n".join(lines)


def message_panel(header: schemas.Header, body: schemas.Body, *, compact: bool = False) -> Panel:
    meta = Table.grid(padding=(0, 2))
    meta.add_column(style="bold")
    meta.add_column()
    meta.add_row("id", plain(header.id))
    meta.add_row("from", plain(header.sender))
    meta.add_row("kind", plain(str(header.kind)))
    meta.add_row("category", plain(f"Art. 10(1)({header.category})"))
    meta.add_row("level", plain(str(header.level)))
    meta.add_row("urgency", plain(str(header.urgency)))
    meta.add_row("created", plain(f"{header.created_at:%Y-%m-%d %H:%M:%S} UTC"))
    restrictions = Panel(
        plain("\n".join(restriction_lines(header.restrictions)), style="bold yellow"),
        title="ORIGINATOR'S RESTRICTIONS (Art. 10(2))",
        border_style="red",
    )
    content = body_summary(body) if compact else body_sections(body)
    parts: list[RenderableType] = [restrictions, meta, Panel(plain(content), title="content")]
    return Panel(Group(*parts), title=plain(f"message {header.id[:10]}…"), border_style="cyan")


def refusals_table(refused: Sequence[schemas.Refusal], title: str = "refused") -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("recipient", style="bold")
    table.add_column("rule", style="magenta")
    table.add_column("reason")
    for r in refused:
        table.add_row(plain(r.recipient), plain(r.rule), plain(r.reason))
    return table


def rejection_line(message_id: str | None, reason: str) -> Text:
    """A delivery the SDK refused; the reason may quote what the sender wrote."""
    return Text.assemble(("rejected", "red"), " ", plain(f"{message_id or '?'}: {reason}"))
