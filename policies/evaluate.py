"""Asking Cedar: one batched call over parsed handles, and what it answers for each
request (allowed, the @id of every determining policy, evaluation errors)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import cedarpy

from policies.entities import uid

# (allowed, determining policy ids sorted, evaluation errors) of one request.
Answer = tuple[bool, list[str], list[str]]


def ask(policies: Any, entities: Any, action: str, principals: Sequence[str],
        ctx: dict[str, Any], resource: dict[str, str]) -> list[Answer]:
    """One Cedar call deciding `action` on `resource` for each agency of `principals`."""
    # The context is serialized once for the whole batch, and requests are not
    # re-validated against the schema: policies and entities were validated at
    # load, the context is built by policies.context, and the reference-model
    # property test checks its shape. Together this roughly halves the cost of a
    # fan-out.
    ctx_json = json.dumps(ctx)
    act = uid("Action", action)
    requests = [
        {"principal": uid("Agency", p), "action": act, "resource": resource,
         "context": ctx_json}
        for p in principals
    ]
    out: list[Answer] = []
    for res in cedarpy.is_authorized_batch(requests, policies, entities):
        d = res.diagnostics
        ann = d.id_annotations_by_reason
        ids = sorted(ann.get(pid, pid) for pid in d.reasons)
        out.append((bool(res.allowed), ids, list(d.errors)))
    return out
