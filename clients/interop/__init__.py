"""STIX 2.1 and MISP export and import that carry the originator's restrictions
(docs/interop.md). Needs the `interop` extra (stix2, pymisp); nothing here is imported by
the rest of orcon except through `clients.cli.interop`, which imports it lazily."""
