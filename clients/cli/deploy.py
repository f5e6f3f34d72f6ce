"""`orcon deploy render OUT_DIR`: every configuration of a federation deployment (the
hub cluster, one leafnode per country, every credential) from the federation file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from clients.cli.render import plain

app = typer.Typer(help="Deployment: render the hub and national leafnode configurations.",
                  no_args_is_help=True)
err = Console(stderr=True)


@app.command()
def render(
    out_dir: Annotated[Path, typer.Argument(help="where to write hub/, countries/, auditors/")],
    federation: Annotated[Path | None, typer.Option(help="federation TOML")] = None,
    plan: Annotated[Path | None, typer.Option(
        help="hosts and ports (JSON, the shape of OUT_DIR/plan.json); default: the sample "
             "production plan (hub-n1..3.federation.example, orcon-leaf.CC.example, TLS)")
    ] = None,
    loopback: Annotated[bool, typer.Option(
        "--loopback", help="everything on 127.0.0.1 with free ports, no TLS (a laptop)")] = False,
    keys: Annotated[Path | None, typer.Option(
        help="a provisioned federation's data directory (its connection.json: root key, "
             "registry, directory, key files): also write connection.json for the hub's "
             "services, the auditors and each country")] = None,
) -> None:
    """Render the hub's three node configs, each country's leafnode config and every
    NATS credential (existing seeds are kept); prints the files written."""
    import msgspec

    from broker.hosting.stack import default_federation
    from broker.hosting.topology import Plan, connection_files, countries_of
    from broker.hosting.topology import render as render_all
    from policies.federation import FederationError, load_federation
    from transport.connection import load_connection

    fed_path = federation or default_federation()
    try:
        countries = countries_of(load_federation(fed_path))
        if plan is not None:
            the_plan = msgspec.json.decode(plan.read_bytes(), type=Plan)
        elif loopback:
            the_plan = Plan.loopback(countries, out_dir.resolve() / "run")
        else:
            the_plan = Plan.sample(countries)
        written = render_all(out_dir, fed_path, the_plan)
        if keys is not None:
            written += list(connection_files(out_dir, the_plan, load_connection(keys)).values())
    except (FederationError, OSError, ValueError, msgspec.ValidationError) as exc:
        err.print(Text.assemble(("error:", "red"), " ", plain(str(exc))))
        raise typer.Exit(1) from None
    for path in written:
        print(path)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="deploy")
