"""Security tests: real nats-server and brokers, attacks from agencies and brokers.

The `stack` fixture of tests/conftest.py (a DevStack with one in-process broker) is used
as is; attacks that need broker processes use tests.support.harness.BrokerProcess, a
hostile member's tools are in tests.support.attacks."""
