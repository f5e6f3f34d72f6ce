"""How messages, outcomes and refusals look to a person (rich renderables).

Restrictions are shown above the content, in a box of their own: a liaison officer
must read the originator's conditions before the intelligence (Article 10(2)).

Everything that came from another agency (content, conditions, reasons quoting it) is
printed as `plain` Text, never as a str: rich would read a str as console markup, so a
sender could draw fake banners, hide text, plant terminal hyperlinks or crash the
command with an unbalanced tag. Control characters (terminal escapes) and bidirectional
overrides are shown as visible escapes for the same reason."""

from __future__ import annotations

import re
from collections.abc import Sequence

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
    content = (
        body_summary(body)
        if compact
        else msgspec.json.format(msgspec.json.encode(body), indent=2).decode()
    )
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
