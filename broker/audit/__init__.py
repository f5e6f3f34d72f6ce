"""The audit transparency log (offline part; no NATS imports here except stream.py).

merkle   RFC 9162 hashing, proofs and the append-only tree
events   AuditEvent (metadata only) and the chained LogRecord (one log entry)
heads    signed tree heads
log      AuditLog: sequence, append, sign heads (in-memory maintainer)
store    the fetched bundle format (entries.bin, heads.jsonl, log_key.pub)
verify   offline verification naming the first bad entry
report   the auditor's self-contained HTML report
perf     figures for `orcon bench`
sample   deterministic synthetic traffic for tests, demo and benchmarks
"""
