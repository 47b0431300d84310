"""The ``myositis-cds`` command line."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
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
@click.option("--database", type=click.Path(dir_okay=False), help="SQLite file (default: the configured one).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def feedback_report(database: str | None, as_json: bool) -> None:
    """Acceptance and override rates per card kind, from stored feedback."""
    from service.report import feedback_report as build

    click.echo(build(database, as_json=as_json))


@main.command()
def knowledge() -> None:
    """Print the reviewed table of therapy options with their references."""
    import cards

    try:
        loaded = cards.load_knowledge()
    except cards.KnowledgeError as exc:
        raise click.ClickException(f"the knowledge base is not valid: {exc}") from None
    click.echo(cards.render_knowledge_table(loaded))


def _register_sandbox() -> None:
    from service.sandbox.commands import register

    register(main)


_register_sandbox()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
