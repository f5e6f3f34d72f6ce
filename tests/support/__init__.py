"""What several test folders share, imported as `tests.support.NAME` (pytest runs with
pythonpath ["."], so `tests` is a package root under --import-mode=importlib):

    harness     broker processes, pre-sealed submissions, acknowledged publishing and
                a recipient loop (fault, load and security tests)
    attacks     a hostile member's tools: raw submissions, the audit log as events,
                the submission queue's state
    raw_nats    raw NATS connections (no SDK) as one principal, through the one dial,
                and the permission violations the server reports to them
    buckets     the signed registry and key directory read and written straight in
                their buckets, and the brokers' verdicts in the log (rollback attacks)
    cli         `orcon` commands run in-process against a stack
    console     a running `orcon console` process
    keys        identities, a root-signed directory and bit flips (keys tests)
    strategies  Hypothesis strategies derived from the Structs
    paths       the repository and the sample federation
    counting    a function counted wherever a module holds it, and from which side
"""
