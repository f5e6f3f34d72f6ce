"""Broker configuration: a TOML file, overridden by `ORCON_*` environment variables.

Precedence (highest first): command-line options, `ORCON_<FIELD>` variables, the file,
the defaults below. Environment wins over the file so one packaged file serves every
host and a service manager (systemd `Environment=`) adjusts a single value.

Every error is a `ConfigError` naming the field and where its value came from, e.g.
`ORCON_MAX_MESSAGE_BYTES: expected an integer >= 1024, got 'lots'`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

ENV_PREFIX = "ORCON_"


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type."""

    def __init__(self, field: str, source: str, message: str) -> None:
        super().__init__(f"{source}: {field}: {message}")
        self.field = field
        self.source = source


class BrokerSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What an operator may set for `orcon broker` / `orcon dev`."""

    # The stack's data directory (connection.json, credentials, keys).
    data_dir: str | None = None
    broker_id: str = "broker-1"
    # Submissions larger than this are rejected with rule `envelope.size` (the NATS
    # max_payload is a separate, larger, transport limit).
    max_message_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    fetch_batch: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 128
    # Health and metrics endpoint; off unless a port is given. Loopback by default:
    # a Prometheus on another host is reached through a proxy or an explicit host.
    http_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] | None = None
    http_host: str = "127.0.0.1"
    # TLS for the embedded server of `orcon dev` (ignored by `orcon broker`, which
    # follows connection.json). With the three files set, they replace the dev CA.
    tls: bool = True
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_ca_file: str | None = None
    # NATS URL(s) override for `orcon broker` (comma separated); default: connection.json.
    nats_url: str | None = None
    json_logs: bool = False


FIELDS = set(BrokerSettings.__struct_fields__)


def _field_of(exc: msgspec.ValidationError) -> str:
    # msgspec says "... - at `$.max_message_bytes`"; the field is the first path token.
    text = str(exc)
    if "`$." in text:
        return text.split("`$.", 1)[1].split("`", 1)[0].split(".", 1)[0].split("[", 1)[0]
    return "?"


def _message(exc: msgspec.ValidationError) -> str:
    return str(exc).split(" - at ", 1)[0]


def _convert(raw: Mapping[str, Any], source: str, strict: bool) -> BrokerSettings:
    try:
        return msgspec.convert(dict(raw), BrokerSettings, strict=strict)
    except msgspec.ValidationError as exc:
        field = _field_of(exc)
        if "unknown field" in str(exc).lower():
            # msgspec names the unknown key in the message itself
            field = str(exc).split("`", 2)[1] if "`" in str(exc) else field
            raise ConfigError(field, source, f"unknown setting (known: "
                              f"{', '.join(sorted(FIELDS))})") from None
        raise ConfigError(field, source, _message(exc)) from None


def _from_env(env: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX):].lower()
        # Other ORCON_* variables (ORCON_PASSPHRASE, test knobs) are not settings.
        if name in FIELDS:
            out[name] = value
    return out


def load_settings(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> BrokerSettings:
    """Defaults < file < environment < `overrides` (the command line; None values are
    ignored, so an option the user did not give does not erase the file's value)."""
    env = os.environ if env is None else env
    merged: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError("-", str(path), "the configuration file does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("-", str(path), f"not valid TOML: {exc}") from None
        # Allow either top-level keys or a [broker] table, so the file can later hold
        # other sections without breaking existing ones.
        table = data.get("broker", data) if isinstance(data.get("broker"), dict) else data
        if table is not data:
            stray = sorted(k for k, v in data.items() if k != "broker" and not isinstance(v, dict))
            if stray:  # read from neither place: refused, never ignored
                raise ConfigError(stray[0], str(path), "a setting outside the [broker] table "
                                  "of a file that has one: move it into [broker]")
        _convert(table, str(path), strict=True)  # typed errors name the file
        merged.update(table)
    env_values = _from_env(env)
    for name, value in env_values.items():
        if not value.strip():
            continue  # an empty variable means "unset" (systemd's Environment=FOO=)
        # Validated one by one so the error names the variable, not a merged dict.
        source = f"{ENV_PREFIX}{name.upper()}"
        one = _convert({name: value}, source, strict=False)
        merged[name] = getattr(one, name)
    if overrides:
        merged.update({k: v for k, v in overrides.items() if v is not None})
    settings = _convert(merged, "configuration", strict=False)
    _check_tls(settings)
    return settings


def _check_tls(settings: BrokerSettings) -> None:
    given = [settings.tls_cert_file, settings.tls_key_file, settings.tls_ca_file]
    if any(given) and not all(given):
        missing = [n for n, v in zip(("tls_cert_file", "tls_key_file", "tls_ca_file"),
                                     given, strict=True) if not v]
        raise ConfigError(missing[0], "configuration",
                          "real certificates need all three of tls_cert_file, "
                          "tls_key_file and tls_ca_file")
    for name in ("tls_cert_file", "tls_key_file", "tls_ca_file"):
        value = getattr(settings, name)
        if value and not Path(value).is_file():
            raise ConfigError(name, "configuration", f"{value} does not exist")
