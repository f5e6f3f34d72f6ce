"""What every `orcon` command shares: one-line errors that say what to do, exit codes
that mean something, and one `--json` shape (docs/cli.md).

Exit codes:
    0  done.
    1  not done: nothing was delivered, the log failed verification, a runtime failure.
    2  refused before anything happened: invalid input (a usage error, a body or header
       breaking a rule, an unknown name or id), or an act a restriction forbids.
    3  the stack cannot be reached: no connection.json, or nothing answers at its URL.

With `--json`, stdout carries exactly one JSON document (an object for one thing, an
array for a collection); a failure writes `{"error": ..., "exit": N}` on stderr."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import msgspec
import typer
from rich.console import Console
from rich.text import Text

from clients.cli.render import plain

if TYPE_CHECKING:
    from clients.sdk.holder import Holder

T = TypeVar("T")

OK, NOT_DONE, INVALID, UNREACHABLE = 0, 1, 2, 3

console = Console()
# An error is one line whatever the terminal width: never wrapped by rich.
err = Console(stderr=True, soft_wrap=True)

DataDir = Annotated[Path, typer.Option("--data-dir", "-d", help="the stack's data directory")]
AsAgency = Annotated[str, typer.Option("--as", help="the agency you act for")]
Json = Annotated[bool, typer.Option("--json", help="one JSON document on stdout (docs/cli.md)")]


class CliError(Exception):
    """A failure already phrased for a person, with its exit code."""

    def __init__(self, message: str, code: int = NOT_DONE,
                 detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail or {}  # added to the JSON error (e.g. who refused, and why)

    def exit(self, *, as_json: bool = False) -> typer.Exit:
        """Said once (`fail`, with its detail under --json); the Exit to raise."""
        return fail(str(self), self.code, as_json=as_json, detail=self.detail)


class OptionError(CliError):
    """An option's value outside its vocabulary or shape: refused before anything runs
    (never read as "no match": a typo in a filter would list nothing and be read as
    "no messages"). With --json the error names `option`, `value` and `rule`, and
    `choices` (a closed vocabulary) or `pattern` (a shape)."""

    def __init__(self, option: str, value: str, *, choices: Iterable[str] | None = None,
                 pattern: str | None = None, hint: str = "") -> None:
        detail: dict[str, Any] = {"option": option, "value": value}
        if choices is not None:
            valid = sorted(choices)
            detail.update(rule="option.choice", choices=valid)
            what = "one of " + (", ".join(valid) or "(none here)")
        else:
            detail.update(rule="option.pattern", pattern=pattern)
            what = hint or f"matching {pattern}"
        super().__init__(f"{option} {value!r}: not a valid value; {what}", INVALID, detail)


def choice(option: str, value: str | None, choices: Iterable[str]) -> str | None:
    """`value` if it is one of `choices` (or None); else OptionError naming them all."""
    valid = frozenset(choices)
    if value is not None and value not in valid:
        raise OptionError(option, value, choices=valid)
    return value


def shaped(option: str, value: str | None, pattern: str, hint: str) -> str | None:
    """`value` if it matches `pattern` whole (or None); else OptionError with `hint`."""
    if value is not None and re.match(pattern, value) is None:
        raise OptionError(option, value, pattern=pattern, hint=hint)
    return value


def fail(message: str, code: int = NOT_DONE, *, as_json: bool = False,
         detail: dict[str, Any] | None = None) -> typer.Exit:
    """Print one error (JSON on stderr with --json) and return the Exit to raise."""
    if as_json:
        doc = {**(detail or {}), "error": message, "exit": code}
        sys.stderr.write(msgspec.json.encode(doc).decode() + "\n")
    else:
        err.print(Text.assemble(("error:", "red"), " ", plain(message)))  # may quote input
    return typer.Exit(code)


def emit(doc: Any) -> None:
    """The one JSON document of a `--json` command (msgspec encodes Structs, datetimes)."""
    sys.stdout.write(msgspec.json.encode(doc).decode() + "\n")


def to_builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


def explain(exc: BaseException, data_dir: Path | None = None) -> CliError | None:
    """The one line (and exit code) for the errors commands share; None if not one."""
    import schemas
    from clients.sdk.client import SendError
    from clients.sdk.holder import LifecycleError
    from keys.errors import CryptoError, KeysError
    from transport.connection import StackUnreachable

    where = f"--data-dir {data_dir}" if data_dir is not None else "--data-dir DIR"
    if isinstance(exc, StackUnreachable):
        return CliError(f"{exc}: the stack is stopped or connection.json is stale; start it "
                        f"with `orcon dev {where}`, then `orcon wait {where}`", UNREACHABLE)
    if isinstance(exc, FileNotFoundError) and exc.filename is None:
        return CliError(str(exc), UNREACHABLE)  # load_connection's own message
    if isinstance(exc, schemas.SchemaError):
        return CliError("not sent, nothing was sealed:\n  "
                        + "\n  ".join(str(e) for e in exc.errors), INVALID,
                        {"errors": [{"path": e.path, "rule": e.rule, "message": e.message}
                                    for e in exc.errors]})
    if isinstance(exc, LifecycleError):
        return CliError(f"refused {exc.rule}: {exc.reason}", INVALID, {"rule": exc.rule})
    if isinstance(exc, CryptoError):
        # Opaque by design; at this level it escapes only from opening the key file.
        return CliError("the agency's key file did not open: is ORCON_PASSPHRASE the "
                        "passphrase the stack was started with?", INVALID)
    if isinstance(exc, KeysError):
        return CliError(str(exc), INVALID)
    if isinstance(exc, LookupError):
        return CliError(str(exc).strip("'\""), INVALID)
    if isinstance(exc, SendError | TimeoutError | FileNotFoundError):
        return CliError(str(exc), NOT_DONE)
    if isinstance(exc, CliError):
        return exc
    return None


def run(coro_factory: Callable[[], Awaitable[T]], data_dir: Path | None = None, *,
        as_json: bool = False) -> T:
    """Run one command's coroutine; the shared errors become one line and an exit code."""
    try:
        return asyncio.run(coro_factory())  # type: ignore[arg-type]
    except Exception as exc:
        known = explain(exc, data_dir)
        if known is None:
            raise
        raise known.exit(as_json=as_json) from None


def note(doc: dict[str, Any], text: Text | str, *, as_json: bool = False) -> None:
    """Something the user must hear besides the result (a refused delivery, messages
    fetched and not shown), on stderr: one JSON object per line with --json (stdout
    keeps its one document), else one line."""
    if as_json:
        sys.stderr.write(msgspec.json.encode(doc).decode() + "\n")
    else:
        err.print(text, markup=False, highlight=False)


def with_holder(data_dir: Path, agency: str, action: Callable[[Holder], Awaitable[T]], *,
                as_json: bool = False, sync: float = 0.5) -> T:
    """Open the agency's Holder (SDK + encrypted store), fetch what is new, act, close.
    Refused deliveries are reported and whatever was fetched and not shown is counted
    (`note`), never silent."""
    from clients.cli.life import store_path, unread_notice
    from clients.cli.logs import configure
    from clients.cli.render import rejection_line
    from clients.sdk.holder import Holder
    from transport.connection import load_connection

    configure(level="WARNING")

    async def main() -> T:
        h = await Holder.open_for(load_connection(data_dir), agency,
                                  store_path(data_dir, agency))
        try:
            got = await h.sync(timeout=sync)
            for rej in got.rejected:  # refused deliveries are said, never dropped silently
                note({"notice": "rejected", "message_id": rej.message_id,
                      "reason": rej.reason},
                     rejection_line(rej.message_id, rej.reason), as_json=as_json)
            result = await action(h)
            unread = len(h.unread())
            if unread:
                note({"notice": "unread", "count": unread,
                      "message": unread_notice(unread, data_dir, agency)},
                     unread_notice(unread, data_dir, agency), as_json=as_json)
            return result
        finally:
            await h.close()

    return run(main, data_dir, as_json=as_json)
