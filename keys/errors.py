"""Errors of the keys package.

Every cryptographic failure is one opaque `CryptoError` (as with Fernet's `InvalidToken`):
a caller, or an attacker probing the broker, learns *that* verification failed, never
*which* check failed, so no error path becomes an oracle. Everything that is not a secret
(an unknown agency, an expired or revoked key, a malformed file) gets a typed `KeysError`
with a message that helps an operator.
"""

from __future__ import annotations

_OPAQUE = "cryptographic verification failed"


class CryptoError(Exception):
    """A signature, tag, key or ciphertext did not verify. Deliberately without detail."""

    def __init__(self, message: str = _OPAQUE) -> None:
        super().__init__(message)


class KeysError(Exception):
    """Base of the typed, non-cryptographic errors."""


class UnknownRecipient(KeysError):
    """No such agency or key in the directory, or no stanza for this identity."""


class KeyExpired(KeysError):
    """The key is outside its validity period at the time that matters."""


class KeyRevoked(KeysError):
    """The key was revoked by the federation root."""


class UnsupportedSuite(KeysError):
    """An algorithm, suite or format version this implementation does not speak."""


class KeyFileError(KeysError):
    """A key file is malformed or has unsafe permissions (a wrong passphrase is a
    CryptoError instead: it is indistinguishable from a tampered file)."""


class DirectoryError(KeysError):
    """A directory entry or revocation list is malformed, inconsistent or a rollback."""


class RollbackError(DirectoryError):
    """A root-signed record (directory entry, revocation list, registry) whose serial is
    not above the one already accepted: a replayed older version, or two different
    records under one serial."""


class ReplayError(KeysError):
    """A message id was seen before, or its creation time is outside the window."""
