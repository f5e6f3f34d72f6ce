"""`orcon console`: the liaison officer's, focal point's and auditor's web console.

A local web server on loopback next to the agency's store and keys, built on the SDK:
`desk` holds the agency's `Holder` (the key never leaves this process), `formspec` builds
compose forms from the message schemas, `security` guards the pages, `app` serves them,
`serve` runs it all.
"""
