"""connection.json fails closed: a mistyped field is refused by name, never dropped (a
dropped `ca` would silently turn TLS off), and a `tls://` URL without a CA is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from transport.connection import CONNECTION_FILE, load_connection

BASE = {"url": "tls://127.0.0.1:4222", "root_public": "00" * 32, "federation": "f.toml",
        "directory": "d.bin", "agencies": {"TH-AHTD": {"nkey": "th.nk"}}, "ca": "ca.pem"}


def _write(tmp_path: Path, doc: dict[str, object]) -> None:
    (tmp_path / CONNECTION_FILE).write_text(json.dumps(doc))


def test_a_mistyped_field_is_refused_by_name(tmp_path: Path) -> None:
    doc = {**BASE, "ca_file": BASE["ca"]}
    del doc["ca"]
    _write(tmp_path, doc)
    with pytest.raises(LookupError, match="ca_file") as info:
        load_connection(tmp_path)
    assert "ca" in str(info.value).split("the fields:")[1]


def test_a_mistyped_credential_field_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, {**BASE, "agencies": {"TH-AHTD": {"nkey": "th.nk", "kye": "th.key"}}})
    with pytest.raises(LookupError, match="kye"):
        load_connection(tmp_path)


def test_tls_url_without_a_ca_is_refused(tmp_path: Path) -> None:
    doc = dict(BASE)
    del doc["ca"]
    _write(tmp_path, doc)
    conn = load_connection(tmp_path)
    with pytest.raises(LookupError, match="asks for TLS but names no `ca`"):
        conn.tls_context()
