"""`python -m bench` from a checkout: the same as `orcon bench`."""

from bench.run import app

app(prog_name="orcon bench")
