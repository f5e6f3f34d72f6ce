"""Agency identities, key files encrypted at rest, the signed key directory, rotation
and revocation, and the envelope seal/open."""

from keys.directory import (
    Directory,
    DirectoryEntry,
    FederationRoot,
    PublicKey,
    Revocation,
    RevocationList,
    SignedEntry,
    SignedRevocations,
)
from keys.envelope import for_recipient, header_hash, open_envelope, seal, verify
from keys.errors import (
    CryptoError,
    DirectoryError,
    KeyExpired,
    KeyFileError,
    KeyRevoked,
    KeysError,
    ReplayError,
    UnknownRecipient,
    UnsupportedSuite,
)
from keys.identity import SUITES, Identity, Recipient, key_id
from keys.keyfile import load_identity, passphrase_from_env_or_prompt, save_identity

__all__ = [
    "SUITES",
    "CryptoError",
    "Directory",
    "DirectoryEntry",
    "DirectoryError",
    "FederationRoot",
    "Identity",
    "KeyExpired",
    "KeyFileError",
    "KeyRevoked",
    "KeysError",
    "PublicKey",
    "Recipient",
    "ReplayError",
    "Revocation",
    "RevocationList",
    "SignedEntry",
    "SignedRevocations",
    "UnknownRecipient",
    "UnsupportedSuite",
    "for_recipient",
    "header_hash",
    "key_id",
    "load_identity",
    "open_envelope",
    "passphrase_from_env_or_prompt",
    "save_identity",
    "seal",
    "verify",
]
