"""A running `orcon console` process, as the console tests drive it."""

from __future__ import annotations

import asyncio
import signal


class RunningConsole:
    def __init__(self, agency: str, base: str, token: str,
                 proc: asyncio.subprocess.Process) -> None:
        self.agency = agency
        self.base = base
        self.token = token
        self.proc = proc

    @property
    def login(self) -> str:
        return f"{self.base}/login?token={self.token}"

    async def stop(self) -> str:
        """Stop the process; everything it printed (to check what it never logs)."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(self.proc.communicate(), timeout=15)
        return out.decode(errors="replace") + err.decode(errors="replace")
