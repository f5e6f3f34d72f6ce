"""Life-cycle acts (Article 10(2) after delivery), as signed header metadata.

Every act after delivery (acknowledgment, use declaration, consent request and decision,
forward notice, purge receipt) is an ordinary orcon message whose body is sealed to the
other party. The broker never reads bodies, so the facts an auditor needs travel in the
signed header as `Header.act`: which information the act is about (with the
originator's signed header as proof), the purpose of a use, the action and third party of
a consent, the consent relied on, the forward target.

Proofs are `SignedHeader`s: the exact header bytes an agency signed, its signature and
the SHA-256 of the ciphertext the signature covers. Anyone holding the signer's directory
key can verify one without the body, so the broker (and auditors) can check "this
originator granted exactly this" with no state of their own.

`ForwardSubmission` is the wire shape of a forward: the holder's signed notice plus the
ORIGINAL envelope (the originator's header bytes, signature and ciphertext unchanged, one
new stanza for the third party). Because the originator's signature still covers the
header, the restrictions cannot be loosened on the way; a forwarder may only tighten them
in its own signed notice (`Act.restrictions`).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas.codes import ConsentScope, PurgeReason, Purpose, UseKind
from schemas.entities import Timestamp
from schemas.ids import MESSAGE_ID_PATTERN
from schemas.restrictions import PartyName, Restrictions

ActMessageId = Annotated[str, msgspec.Meta(pattern=MESSAGE_ID_PATTERN)]
Digest = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
# Bounded so a proof cannot be used to inflate headers: a header is a few hundred bytes,
# a proof nests at most one level (a consent's own act carries its original).
ProofBytes = Annotated[bytes, msgspec.Meta(min_length=1, max_length=32768)]

FORWARD_TAG = "orcon-forward/1"


class SignedHeader(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True,
                   array_like=True):
    """A signed header without its body: verifiable with the signer's public key
    (`keys.envelope.verify_signed_header`)."""

    header: ProofBytes
    signature: Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]
    body_digest: Digest  # SHA-256 of the envelope ciphertext, covered by the signature


class Act(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True, omit_defaults=True,
          kw_only=True):
    """What a life-cycle message does, for the broker's checks and the audit log. Which
    act it is follows from `Header.kind`; only the fields that kind needs are set."""

    message_id: ActMessageId  # the information acted on
    original: SignedHeader  # the originator's signed header of `message_id`
    # Consent request / decision: what is asked or decided, and for whom. For
    # onward_dissemination `party` is the third party; for the other scopes it is the
    # holder that will act (a grant to one holder is not a grant to another).
    action: ConsentScope | None = None
    party: PartyName | None = None
    granted: bool | None = None  # consent decision
    valid_until: Timestamp | None = None  # consent decision: the grant lapses then
    # Consent decision: the request decided. Amendment receipt, and a purge receipt
    # answering a withdrawal: the amendment / withdrawal complied with.
    request: ActMessageId | None = None
    # Use declaration
    use: UseKind | None = None
    purpose: Purpose | None = None
    evidential: bool = False
    # Use declaration / forward: the originator's signed grant relied on
    consent: SignedHeader | None = None
    # A holder that received the information by forward proves it with the forwarder's
    # signed forward notice naming it.
    via: SignedHeader | None = None
    # Forward: the restrictions the third party receives; amendment: the originator's
    # new restrictions. Never looser (checked by broker and recipient).
    restrictions: Restrictions | None = None
    # Purge receipt
    purge_reason: PurgeReason | None = None
    # Amendment: the amendment in force before this one (the originator's signed
    # header), so the broker checks that the new restrictions (`restrictions`) tighten
    # it, not merely the original.
    amends: SignedHeader | None = None
    # Amendment / withdrawal: the forwarders' signed forward notices, which prove that
    # the third parties they name hold the information too (so they are told as well).
    forwards: Annotated[list[SignedHeader], msgspec.Meta(max_length=256)] = []


class ForwardSubmission(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True,
                        array_like=True):
    """Submitted by the holder on its own submit subject; delivered to the third party
    in the same shape (each envelope cut down to the stanzas it may see). The leading
    string tag tells it apart from an `Envelope`, whose first field is an integer."""

    tag: str  # FORWARD_TAG
    notice: bytes  # encoded Envelope: the holder's signed forward_notice to the originator
    original: bytes  # encoded Envelope: the original, with a stanza for the third party


_fwd_encoder = msgspec.msgpack.Encoder()
_fwd_decoder = msgspec.msgpack.Decoder(ForwardSubmission)


def encode_forward(sub: ForwardSubmission) -> bytes:
    return _fwd_encoder.encode(sub)


def is_forward(data: bytes) -> bool:
    """Cheap dispatch on the first array element: a str tag (forward) vs an int (envelope).
    msgpack fixarray (0x90..0x9f) then fixstr (0xa0..0xbf) or str8 (0xd9)."""
    return len(data) > 2 and 0x90 <= data[0] <= 0x9F and (
        0xA0 <= data[1] <= 0xBF or data[1] == 0xD9
    )


def decode_forward(data: bytes) -> ForwardSubmission:
    """Raises msgspec.DecodeError / ValidationError, or ValueError on a wrong tag."""
    sub = _fwd_decoder.decode(data)
    if sub.tag != FORWARD_TAG:
        raise ValueError(f"unknown submission tag {sub.tag!r}")
    return sub
