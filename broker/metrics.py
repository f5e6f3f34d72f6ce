"""Prometheus metrics of one orcon service process: its brokers and its audit sequencer
(a private registry per process, so several stacks in one test process do not
collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.routed = Counter(
            "orcon_deliveries_total", "Envelopes delivered to a recipient", registry=self.registry
        )
        self.refused = Counter(
            "orcon_refusals_total", "Recipients refused, by rule", ["rule"], registry=self.registry
        )
        self.rejected = Counter(
            "orcon_rejected_submissions_total",
            "Submissions rejected as a whole, by rule",
            ["rule"],
            registry=self.registry,
        )
        self.errors = Counter(
            "orcon_route_errors_total", "Submissions left for redelivery", registry=self.registry
        )
        self.internal_errors = Counter(
            "orcon_internal_errors_total",
            "Submissions rejected with rule `internal` (a defect in routing: see the log)",
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "orcon_dead_letters_total",
            "Submissions moved to the dead-letter stream after the delivery limit",
            registry=self.registry,
        )
        self.latency = Histogram(
            "orcon_route_seconds",
            "Time from fetch to acknowledged routing of one submission",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.registry,
        )

        # The audit sequencer's (broker/audit/sequencer.py): neither stops the log, both
        # mean someone wrote what they should not have.
        self.audit_rejected = Counter(
            "orcon_audit_rejected_inputs_total",
            "Inputs the audit sequencer refused and moved past: undecodable or not an "
            "event on the audit input, or a head request naming a reply subject that is "
            "not an inbox",
            registry=self.registry,
        )
        self.audit_foreign = Gauge(
            "orcon_audit_foreign_entries",
            "Entries of the audit log the sequencer did not write (counted when it reads "
            "the log back, and as it finds them)",
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
