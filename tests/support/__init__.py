"""What several test folders share, imported as `tests.support.NAME` (pytest runs with
pythonpath ["."], so `tests` is a package root under --import-mode=importlib):

    harness     broker processes, pre-sealed submissions, acknowledged publishing and
                a recipient loop (fault, load and security tests)
    attacks     a hostile member's tools: raw submissions, the audit log as events,
                the submission queue's state
    nats        raw NATS connections as one principal, and the permission violations
                the server reports to them
    registry    the signed registry and key directory written straight into their
                buckets (rollback attacks)
    cli         `orcon` commands run in-process against a stack
    keys        identities, a root-signed directory and bit flips (keys tests)
    strategies  Hypothesis strategies derived from the Structs
"""
