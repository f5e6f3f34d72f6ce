"""Micro-benchmarks of seal/open for `orcon bench`, and GnuPG as a point of comparison.

`open_<suite>_ms` is what a recipient's SDK runs for one delivery, from the bytes the
broker delivered to the decoded body (`clients.sdk.opening`): parse the envelope and
header, check the header against this agency, look the sender's key up in the
directory, verify, unwrap, check the commitment, decrypt, decode and validate the body.
`open_envelope_<suite>_ms` is the keys layer's part alone (verify + unwrap + decrypt).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import msgspec

from clients.sdk.opening import Delivery, Received, open_delivery, parse_delivery
from keys.directory import Directory, FederationRoot
from keys.envelope import open_envelope, seal
from keys.identity import MLKEM768X25519, X25519, Identity
from schemas.bodies import Body
from schemas.codec import decode_body, encode
from schemas.envelope import encode_envelope
from schemas.examples import example_header, information_request
from schemas.message import parse_message

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


def body_of(size: int) -> Body:
    """A valid information request whose encoding is exactly `size` bytes (its purpose
    text padded): a real body for the recipient to decode and validate."""
    base = information_request()
    text = base.purpose.text
    for _ in range(8):  # the text's length prefix may widen once: converges in two
        short = size - len(encode(base))
        if short == 0:
            decode_body(encode(base))  # valid, as a sender's SDK would have made it
            return base
        text = (text + " Route R1 via the border crossing at the river." * 64)[
            :len(text) + short]
        base = msgspec.structs.replace(
            base, purpose=msgspec.structs.replace(base.purpose, text=text.rstrip() + "."))
    raise ValueError(f"no information request of exactly {size} bytes")


def measure(seconds: float = 1.0, size: int = 1024) -> dict[str, float]:
    """Seal a `size`-byte body to 1, 10 and 195 recipients, and open one as a recipient,
    for each suite. Keys `seal_<suite>_<n>_ms`, `seal_<suite>_<n>_ops`, `open_<suite>_ms`
    and `open_<suite>_ops` (the SDK's whole path, see the module), and
    `open_envelope_<suite>_ms` (the keys layer alone). Each figure runs for about
    `seconds`."""
    now = datetime.now(UTC)
    root = FederationRoot.generate(now)
    directory = Directory(root.public_bytes)
    signer = Identity.generate("IT-SCO", now=now)
    # A real signed header and a real body (what a recipient opens): opening reads its
    # commitment, checks its bytes (limits, no repeated key) and its rules, and decodes
    # and validates the body.
    report = body_of(size)
    body = encode(report)
    _publish(directory, root, signer, now)
    out: dict[str, float] = {}
    for suite in (X25519, MLKEM768X25519):
        idents = [
            Identity.generate(f"R{suite[0].upper()}{i:03d}", suites=(suite,), now=now)
            for i in range(max(RECIPIENT_COUNTS))
        ]
        _publish(directory, root, idents[0], now)
        header = encode(msgspec.structs.replace(
            example_header(report, sender=signer.agency, recipients=(idents[0].agency,)),
            sender_key=signer.signing_key_id, created_at=now))
        recipients = [i.recipients()[0] for i in idents]
        for n in RECIPIENT_COUNTS:
            per = _time(partial(seal, header, body, recipients[:n], signer), seconds)
            out[f"seal_{suite}_{n}_ms"], out[f"seal_{suite}_{n}_ops"] = per * 1e3, 1 / per
        data = encode_envelope(seal(header, body, recipients[:1], signer))
        per = _time(partial(_receive, data, idents[0], directory, now), seconds)
        out[f"open_{suite}_ms"], out[f"open_{suite}_ops"] = per * 1e3, 1 / per
        msg = parse_message(data)
        opener = partial(open_envelope, msg, idents[0], signer.signing_public, now=now)
        out[f"open_envelope_{suite}_ms"] = _time(opener, seconds) * 1e3
    return out


def _receive(data: bytes, identity: Identity, directory: Directory, now: datetime) -> None:
    """One delivery as `AgencyClient.open_delivery` opens it (without the seen-id set)."""
    delivery = parse_delivery(data)
    assert isinstance(delivery, Delivery), delivery
    got = open_delivery(delivery, identity=identity, directory=directory, now=now,
                        replay_window=_WINDOW)
    if not isinstance(got, Received):  # a figure of a refusal would measure nothing
        raise RuntimeError(f"the benchmark's delivery was refused: {got.reason}")


_WINDOW = timedelta(days=30)


def _publish(directory: Directory, root: FederationRoot, ident: Identity,
             now: datetime) -> None:
    directory.add(root.sign_entry(ident.directory_entry(
        country="IT", roles=["ncb"], clearance="SECRET", now=now)))


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
