"""Counting what a side does with one message: a function wrapped wherever a module
holds it (`schemas.decode_header`, `from schemas.codec import decode_header`, ...), and
whether a call comes from one package's code (the in-process broker and the agency's
SDK run in one test process; each side counts only its own calls)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest


def called_from(folder: str) -> bool:
    """True when a frame of the caller's stack runs code under `folder`."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith(folder):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def wrap_everywhere(monkeypatch: pytest.MonkeyPatch, original: Any,
                    seen: Callable[[tuple[Any, ...], Any], None]) -> None:
    """Replace every module's reference to `original` by a wrapper that calls it, then
    `seen(args, result)`."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        seen(args, result)
        return result

    for module in list(sys.modules.values()):
        for attr, value in list(getattr(module, "__dict__", {}).items()):
            if value is original:
                monkeypatch.setattr(module, attr, wrapper)
