"""Micro-benchmarks of seal/open for `orcon bench`, and GnuPG as a point of comparison."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from keys.envelope import open_envelope, seal
from keys.identity import MLKEM768X25519, X25519, Identity
from schemas.codec import encode
from schemas.examples import example_header, mekong_route_report

RECIPIENT_COUNTS = (1, 10, 195)  # one, a working group, every UN member state


def _time(op: Callable[[], object], seconds: float) -> float:
    """Seconds per call: repeat for about `seconds` (at least 3 calls)."""
    op()  # warm-up: first-call costs (imports, key parsing caches) are not the steady state
    n, start = 0, time.perf_counter()
    while True:
        op()
        n += 1
        elapsed = time.perf_counter() - start
        if n >= 3 and elapsed >= seconds:
            return elapsed / n


def measure(seconds: float = 1.0, size: int = 1024) -> dict[str, float]:
    """Seal a `size`-byte body to 1, 10 and 195 recipients and open it, for each suite.
    Keys `seal_<suite>_<n>_ms`, `seal_<suite>_<n>_ops`, `open_<suite>_ms`,
    `open_<suite>_ops`. Each figure runs for about `seconds`."""
    now = datetime.now(UTC)
    signer = Identity.generate("SENDER", now=now)
    # A real signed header (what a recipient opens): opening reads its commitment and
    # checks its bytes (limits, no repeated key) before anything is decrypted.
    body, header = os.urandom(size), encode(example_header(mekong_route_report()))
    out: dict[str, float] = {}
    for suite in (X25519, MLKEM768X25519):
        idents = [
            Identity.generate(f"R{i:03d}", suites=(suite,), now=now)
            for i in range(max(RECIPIENT_COUNTS))
        ]
        recipients = [i.recipients()[0] for i in idents]
        for n in RECIPIENT_COUNTS:
            per = _time(partial(seal, header, body, recipients[:n], signer), seconds)
            out[f"seal_{suite}_{n}_ms"], out[f"seal_{suite}_{n}_ops"] = per * 1e3, 1 / per
        env = seal(header, body, recipients[:1], signer)
        opener = partial(open_envelope, env, idents[0], signer.signing_public, now=now)
        per = _time(opener, seconds)
        out[f"open_{suite}_ms"], out[f"open_{suite}_ops"] = per * 1e3, 1 / per
    return out


def measure_gpg(
    recipients: int = 10, seconds: float = 1.0, size: int = 1024, gpg: str = "gpg"
) -> float:
    """Milliseconds per `gpg --sign --encrypt` of a `size`-byte message to `recipients`
    ed25519/cv25519 keys, in a throwaway GNUPGHOME. Includes process start-up, which is
    how GnuPG is used in practice for one message at a time."""
    exe = shutil.which(gpg)
    if exe is None:
        raise FileNotFoundError(f"{gpg} not found")
    with tempfile.TemporaryDirectory(prefix="orcon-gpg-") as home:
        env = {**os.environ, "GNUPGHOME": home}
        base = [exe, "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]

        def run(*args: str) -> None:
            subprocess.run([*base, *args], env=env, check=True, capture_output=True)

        try:
            names = [f"r{i}@orcon.test" for i in range(recipients)]
            for uid in ["sender@orcon.test", *names]:
                run("--quick-gen-key", uid, "ed25519", "sign", "never")
                fpr = _fingerprint(exe, env, uid)
                run("--quick-add-key", fpr, "cv25519", "encr", "never")
            msg = Path(home) / "msg"
            msg.write_bytes(os.urandom(size))
            args = ["--trust-model", "always", "--yes", "-u", "sender@orcon.test", "-o", "-"]
            for uid in names:
                args += ["-r", uid]
            per = _time(lambda: run(*args, "--sign", "--encrypt", str(msg)), seconds)
        finally:
            # End the gpg-agent this function started (by its home, not by name).
            gpgconf = shutil.which("gpgconf")
            if gpgconf:
                subprocess.run([gpgconf, "--kill", "gpg-agent"], env=env, capture_output=True)
    return per * 1e3


def _fingerprint(exe: str, env: dict[str, str], uid: str) -> str:
    out = subprocess.run(
        [exe, "--batch", "--with-colons", "--list-keys", uid],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))
