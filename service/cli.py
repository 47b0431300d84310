"""The ``myositis-cds`` command line."""

from __future__ import annotations

import os
import sys
from datetime import date, datetime
from typing import Any

import click

__all__ = ["main"]


def _sandbox_commands() -> dict[str, click.Command]:
    """``load``, ``fire``, ``sandbox``, ``demo``: from the ``sandbox`` package, which the production image lacks."""
    try:
        from sandbox.commands import COMMANDS
    except ImportError:
        return {}
    return {command.name: command for command in COMMANDS if command.name}


class _Main(click.Group):
    """The command group; the sandbox's commands are found only when asked for.

    The runtime package never imports ``sandbox`` at import time (tests/architecture): the
    server and ``--help`` of the runtime commands work in an image that carries no sandbox.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_sandbox_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or _sandbox_commands().get(cmd_name)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """myositis-cds: CDS Hooks service for refractory dermatomyositis / polymyositis."""


def _auth_warning(no_auth: bool) -> dict[str, Any]:
    if not no_auth:
        return {}
    click.secho(
        "WARNING: --no-auth: CDS client JWTs are NOT verified. Anyone who can reach this port can call the "
        "service. Use only on your own machine.",
        fg="red",
        bold=True,
        err=True,
    )
    return {"AUTH_ENABLED": False}


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="MYOSITIS_CDS_BIND_HOST",
    help="Interface to listen on (env MYOSITIS_CDS_BIND_HOST). Put a buffering proxy in front "
    "of anything but loopback (deploy/nginx.conf).",
)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes.")
@click.option("--no-auth", is_flag=True, help="Do not verify CDS client JWTs (local use only).")
@click.option("--dev", is_flag=True, help="Use Flask's development server instead of gunicorn (local use only).")
def serve(host: str, port: int, workers: int, no_auth: bool, dev: bool) -> None:
    """Serve the CDS Hooks endpoints (gunicorn; --dev for Flask's server)."""
    overrides = _auth_warning(no_auth)
    if dev:
        from service import create_app

        create_app(overrides).run(host=host, port=port, threaded=True)
        return
    from service.gunicorn_app import run_gunicorn

    if no_auth:
        os.environ["MYOSITIS_CDS_AUTH_ENABLED"] = "false"  # reaches the workers through the environment
    run_gunicorn(host=host, port=port, workers=workers)


@main.command("feedback-report")
@click.option(
    "--database",
    type=click.Path(dir_okay=False),
    help="SQLite file (default: the configured storage, SQLite or DATABASE_URL).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def feedback_report(database: str | None, as_json: bool) -> None:
    """Per card kind: shown, re-shown, suppressed, acceptance and override rates, overrides per reason."""
    from service.report import feedback_report as build

    click.echo(build(database, as_json=as_json))


@main.command()
@click.option(
    "--claims", is_flag=True, help="Audit view: every claim, its tag, each cited reference and its verification."
)
@click.option("--check", is_flag=True, help="Exit 1 if any entry's review is older than a year (names them).")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Date the --check is made on (default: today).",
)
def knowledge(claims: bool, check: bool, today: datetime | None) -> None:
    """Print the reviewed table of therapy options with their references (or the claims audit, or a staleness check)."""
    import cards

    try:
        loaded = cards.load_knowledge()
    except cards.KnowledgeError as exc:
        raise click.ClickException(f"the knowledge base is not valid: {exc}") from None
    if check:
        day = today.date() if today else date.today()
        stale = cards.stale_entries(loaded, day)
        for s in stale:
            click.echo(f"{s.file}: {s.entry}: last reviewed {s.reviewed.isoformat()}")
        click.echo(
            f"knowledge version {loaded.meta.version}: {len(stale)} entr{'y' if len(stale) == 1 else 'ies'} "
            f"reviewed more than a year before {day.isoformat()}"
        )
        if stale:
            sys.exit(1)
        return
    click.echo(cards.render_claims_table(loaded) if claims else cards.render_knowledge_table(loaded))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
