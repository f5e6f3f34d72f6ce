"""The policy engine: Cedar decides, the engine feeds it and explains the outcome.

One `PolicyEngine` holds pre-parsed Cedar handles (policies, schema, registry
entities) for one *policy version*: the content hash of the policy files and the
registry (policies/loading.py). Message attributes go in the request context
(policies/context.py), so a fan-out to N recipients is one batched Cedar call over
handles parsed once, with one request per class of indistinguishable recipients
(policies/entities.py). Every decision is worded by policies/reasons.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from policies import audience, reasons
from policies.context import header_key, message_facts, restriction_context
from policies.countries import ISO_COUNTRIES
from policies.decisions import Consent, Decision
from policies.entities import class_key, named_entities, uid
from policies.evaluate import Answer, ask
from policies.federation import Federation
from policies.loading import DEFAULT_POLICY_DIR, PolicyLoadError, load_policies
from policies.names import Vocabulary, restriction_errors
from schemas.header import Header
from schemas.restrictions import Restrictions

# The engine's inputs, outputs and load error, importable from here as from `policies`.
__all__ = ["Consent", "Decision", "PolicyEngine", "PolicyLoadError"]


class PolicyEngine:
    def __init__(
        self,
        federation: Federation,
        policy_dir: Path | None = None,
        *,
        cache_size: int = 200_000,
    ) -> None:
        self._policy_dir = policy_dir or DEFAULT_POLICY_DIR
        self._cache_size = cache_size
        self._cache: dict[tuple[Any, ...], Decision] = {}
        self.federation = federation
        self.vocabulary = Vocabulary(federation)
        self._loaded = load_policies(federation, self._policy_dir)

    @property
    def version(self) -> str:
        return self._loaded.version

    @property
    def policy_dir(self) -> Path:
        return self._policy_dir

    def reload(self, federation: Federation | None = None, policy_dir: Path | None = None) -> str:
        """Swap in a new registry and/or policy directory; returns the new version.
        The cache is dropped with the old handles: a decision never outlives the
        version it was made under."""
        fed = federation if federation is not None else self.federation
        pdir = policy_dir if policy_dir is not None else self._policy_dir
        loaded = load_policies(fed, pdir)
        self._cache = {}
        self.federation, self._policy_dir, self._loaded = fed, pdir, loaded
        self.vocabulary = Vocabulary(fed)
        return loaded.version

    def cache_info(self) -> dict[str, int]:
        return {"entries": len(self._cache), "max": self._cache_size}

    def candidates(self, header: Header) -> list[str]:
        """See policies.audience.candidates."""
        return audience.candidates(self.federation, header)

    # -- asking Cedar -----------------------------------------------------------

    def _classify(self, name: str) -> str | None:
        fed = self.federation
        if fed.is_agency(name):
            return "Agency"
        if fed.is_group(name):
            return "Group"
        if name in ISO_COUNTRIES:
            return "Country"
        # Any other name is refused before Cedar runs (`_unresolved`): in the context
        # it would designate nobody and an exclusion would silently remove no one.
        return None

    def _context(self, header: Header, now: datetime, consents: Sequence[Consent] = (),
                 purpose: str = "", evidential: bool = False,
                 use_kind: str = "") -> dict[str, Any]:
        return restriction_context(header.restrictions, header.sender, now, self._classify,
                                   consents, purpose, evidential,
                                   use_kind) | message_facts(header)

    def _run(self, action: str, principals: Sequence[str], ctx: dict[str, Any],
             resource: dict[str, str]) -> list[Answer]:
        L = self._loaded
        return ask(L.policies, L.entities, action, principals, ctx, resource)

    def _explain(self, action: str, header: Header, principal: str, answer: Answer,
                 purpose: str = "") -> Decision:
        allowed, ids, errors = answer
        return reasons.explain(action, header, principal, allowed, ids, errors,
                               version=self.version, basis_order=self._loaded.basis_order,
                               fed=self.federation, purpose=purpose)

    # -- refusals before Cedar --------------------------------------------------

    def _registry_refusal(self, header: Header, principal: str,
                          unresolved: str | None = None) -> Decision | None:
        """Refusals decided before Cedar: unknown parties, and restrictions naming what
        the registry does not know (`unresolved`, from `_unresolved`; computed once per
        header by the caller). Fail closed: such a restriction refuses everyone rather
        than designating no one."""
        fed = self.federation
        if not fed.is_agency(header.sender):
            return reasons.unknown_sender(principal, header.sender, self.version)
        if not fed.is_agency(principal):
            return reasons.unknown_agency(principal, self.version)
        if unresolved is not None:
            return reasons.refusal(principal, reasons.RULE_UNRESOLVED, unresolved,
                                   self.version)
        return None

    def _unresolved(self, r: Restrictions) -> str | None:
        errors = restriction_errors(self.vocabulary, r)
        if not errors:
            return None
        return ("refused: the sender's restrictions name what the federation does not "
                f"know ({'; '.join(f'{e.path}: {e.message}' for e in errors)})")

    # -- deciding ---------------------------------------------------------------

    def decide_receive(
        self, header: Header, recipients: Sequence[str], now: datetime
    ) -> list[Decision]:
        """One decision per recipient, in order; one Cedar call for all that miss
        the cache."""
        L = self._loaded
        key = header_key(header, now, L.version, L.thresholds)
        out: list[Decision | None] = [None] * len(recipients)
        todo: list[int] = []
        unresolved = self._unresolved(header.restrictions)
        for i, rcp in enumerate(recipients):
            refusal = self._registry_refusal(header, rcp, unresolved)
            if refusal is not None:
                out[i] = refusal
                continue
            hit = self._cache.get((*key, rcp))
            if hit is not None:
                out[i] = hit
            else:
                todo.append(i)
        if todo:
            ctx = self._context(header, now)
            visible = named_entities(ctx) | L.named_in_policies
            # One Cedar request per class of indistinguishable recipients.
            rep_of: dict[Any, int] = {}
            member_class: list[Any] = []
            for i in todo:
                cls = class_key(L.classes, recipients[i], visible)
                rep_of.setdefault(cls, len(rep_of))
                member_class.append(rep_of[cls])
            reps = [""] * len(rep_of)
            for i, c in zip(todo, member_class, strict=True):
                reps[c] = reps[c] or recipients[i]
            class_results = self._run("receive", reps, ctx, uid("Message", header.id))
            results = [class_results[c] for c in member_class]
            caching = self._cache_size > 0
            if len(self._cache) + len(todo) > self._cache_size:
                # Dropping everything is cheaper than LRU bookkeeping per hit, and the
                # next fan-out of a hot header refills it in one batch.
                self._cache = {}
            for i, answer in zip(todo, results, strict=True):
                d = self._explain("receive", header, recipients[i], answer)
                out[i] = d
                if caching and not answer[2]:
                    self._cache[(*key, recipients[i])] = d
        return [d for d in out if d is not None]

    def decide_forward(
        self,
        header: Header,
        holder: str,
        third_party: str,
        consents: Sequence[Consent],
        now: datetime,
    ) -> Decision:
        """May `holder` pass the information to `third_party`? The receive rules apply
        to the third party as if the originator had sent it, plus H2."""
        if not self.federation.is_agency(holder):
            return reasons.refusal(third_party, reasons.RULE_UNKNOWN_AGENCY,
                                   f"refused: holder {holder} is not a registered agency",
                                   self.version)
        refusal = self._registry_refusal(header, third_party,
                                         self._unresolved(header.restrictions))
        if refusal is not None:
            return refusal
        ctx = self._context(header, now, consents)
        (answer,) = self._run("forward", [third_party], ctx, uid("Message", header.id))
        return self._explain("forward", header, third_party, answer)

    def decide_use(
        self,
        header: Header,
        holder: str,
        purpose: str,
        evidential: bool,
        consents: Sequence[Consent],
        now: datetime,
        use_kind: str = "",
    ) -> Decision:
        """May `holder` use the information for `purpose`, as a use of `use_kind`
        (schemas.codes.UseKind; "" when the caller declares no kind)?"""
        refusal = self._registry_refusal(header, holder, self._unresolved(header.restrictions))
        if refusal is not None:
            return refusal
        ctx = self._context(header, now, consents, purpose=purpose, evidential=evidential,
                            use_kind=use_kind)
        (answer,) = self._run("use", [holder], ctx, uid("Message", header.id))
        return self._explain("use", header, holder, answer, purpose=purpose)

    def decide_read_metadata(self, agency: str, message_id: str) -> Decision:
        if not self.federation.is_agency(agency):
            return reasons.unknown_agency(agency, self.version)
        (answer,) = self._run("read_metadata", [agency], {}, uid("Message", message_id))
        return reasons.explain_simple(agency, "read the audit metadata", *answer, self.version)

    def decide_subscribe(self, agency: str, feed: str = "alerts") -> Decision:
        if not self.federation.is_agency(agency):
            return reasons.unknown_agency(agency, self.version)
        (answer,) = self._run("subscribe", [agency], {}, uid("Feed", feed))
        return reasons.explain_simple(agency, f"subscribe to {feed}", *answer, self.version)
