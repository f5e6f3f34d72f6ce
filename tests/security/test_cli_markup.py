"""Message content is data, never terminal markup.

Another agency writes the content, the conditions and (through the errors that quote
it) the reasons `orcon inbox` prints. rich reads every str it prints as console markup:
a sender could crash the command with an unbalanced tag, draw a fake banner, hide text
(`[conceal]`), plant a terminal hyperlink (`[link=...]`, OSC 8), or send raw escape
sequences. Rendered here on a real terminal console, as `orcon inbox` and `orcon demo`
print them.
"""

from __future__ import annotations

import io

import msgspec
import pytest
from rich.console import Console

import schemas
from clients.cli.render import message_panel, refusals_table, rejection_line
from schemas import examples

BANNER = "[bold white on red] VERIFIED BY THE FEDERATION ROOT [/]"
HIDDEN = "[conceal]hidden instruction[/conceal]"
LINK = "[link=https://evil.example/]open the case file[/link]"
CRASH = "closing nothing [/]"
EMOJI = ":warning:"
ESCAPES = "\x1b[2J\x1b]8;;https://evil.example/\x07click\x1b]8;;\x07\x9b31m\u202egnirts"
ALL = " ".join([BANNER, HIDDEN, LINK, CRASH, EMOJI, ESCAPES])


def _render(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor", width=400,
            emoji=True).print(renderable)
    return out.getvalue()


def _message() -> tuple[schemas.Header, schemas.Body]:
    report = examples.mekong_route_report()
    body = msgspec.structs.replace(
        report, title=ALL,
        narrative=msgspec.structs.replace(report.narrative, text=ALL))
    header = examples.example_header(body)
    conditions = [schemas.Condition(lang="en", text=ALL)]
    header = msgspec.structs.replace(
        header, restrictions=msgspec.structs.replace(header.restrictions,
                                                     conditions=conditions))
    return header, body


def _assert_inert(text: str) -> None:
    for literal in ("[bold white on red]", "[conceal]", "[link=https://evil.example/]",
                    "closing nothing [/]", EMOJI):
        assert literal in text, f"{literal!r} was interpreted as markup"
    assert "\x1b]8;" not in text  # no terminal hyperlink
    assert "\x1b[8m" not in text  # no concealed text
    assert "\x1b[2J" not in text and "\x9b" not in text and "\u202e" not in text
    assert "\x07" not in text


@pytest.mark.parametrize("compact", [False, True], ids=["inbox", "demo"])
def test_message_content_is_never_markup(compact: bool) -> None:
    header, body = _message()
    text = _render(message_panel(header, body, compact=compact))
    _assert_inert(text)
    assert "VERIFIED BY THE FEDERATION ROOT" in text  # shown, as the text it is


def test_reasons_and_refusals_are_never_markup() -> None:
    _assert_inert(_render(rejection_line("01JPA7Q5K3M4N5P6Q7R8S9T0VW", f"malformed body: {ALL}")))
    _assert_inert(_render(refusals_table([schemas.Refusal("KH-AHTJP", "rule", ALL)])))
