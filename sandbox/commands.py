"""Click commands: ``load``, ``fire``, ``sandbox`` and ``demo``.

One module: the commands share their defaults (FHIR server, service, token), the error exit and the
in-process service, and each is a thin shell over ``loader``, ``ehr``, ``fhir_server`` and ``signals``.

The CLI (``service.cli``) finds ``COMMANDS`` here when one of them is asked for. Heavy imports (Flask app, requests)
happen inside the commands so ``myositis-cds --help`` stays fast.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import click

from sandbox.signals import stop_on_signals

__all__ = ["SANDBOX_TOKEN", "register"]

# The bearer token the embedded sandbox FHIR server accepts, and that `fire`
# and `load` send by default. A fixed, public, local-only value: it exists so
# the sandbox exercises the fhirAuthorization flow end to end, not to protect
# anything.
SANDBOX_TOKEN = "myositis-cds-sandbox-token"
DEFAULT_FHIR = "http://127.0.0.1:8090/fhir"
DEFAULT_SERVICE = "http://127.0.0.1:8080"


def _fail(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)


def _example_paths() -> list[Path]:
    from sandbox.patients import list_patients

    return [p.path for p in list_patients()]


# --------------------------------------------------------------------------- load


@click.command("load")
@click.option(
    "--fhir",
    "fhir_url",
    default=DEFAULT_FHIR,
    show_default=True,
    envvar="MYOSITIS_CDS_SANDBOX_FHIR",
    help="FHIR R4 base URL to load into (env MYOSITIS_CDS_SANDBOX_FHIR).",
)
@click.option(
    "--token",
    default=SANDBOX_TOKEN,
    show_default=True,
    help="Bearer token to send ('' for none); servers without auth ignore it.",
)
@click.option(
    "--wait",
    "wait_s",
    default=0.0,
    show_default=True,
    type=float,
    help="Seconds to wait for the server's /metadata to answer first (e.g. a starting HAPI).",
)
@click.argument("bundles", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load_command(fhir_url: str, token: str, wait_s: float, bundles: tuple[Path, ...]) -> None:
    """Load transaction Bundles into a FHIR server (default: the example patients)."""
    from sandbox.loader import LoadError, load_bundles, wait_for_fhir

    paths = list(bundles) or _example_paths()
    try:
        if wait_s > 0:
            click.echo(f"waiting up to {wait_s:.0f}s for {fhir_url} ...")
            wait_for_fhir(fhir_url, wait_s)
        results = load_bundles(fhir_url, paths, access_token=token or None)
    except LoadError as exc:
        _fail(str(exc))
        return
    for result in results:
        click.echo(f"loaded {result.path.name}: {result.entries} resources")
    click.echo(f"{len(results)} bundle(s) loaded into {fhir_url}")


# --------------------------------------------------------------------------- fire


def _print_response(response: Any, as_json: bool) -> None:
    from sandbox.terminal import format_cards

    try:
        body = response.json()
    except ValueError:
        body = None
    if as_json:
        click.echo(json.dumps(body, indent=2, ensure_ascii=False) if body is not None else response.text)
    if response.status_code != 200:
        detail = body if isinstance(body, dict) else response.text[:500]
        if not as_json:
            click.secho(f"The service answered HTTP {response.status_code}: {json.dumps(detail)}", fg="red", err=True)
        sys.exit(1)
    if not as_json:
        click.echo(format_cards(body if isinstance(body, dict) else {}))


def _rxcui(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if not value.isdigit():
            raise click.BadParameter(f"{value!r} is not an RxNorm code (RXCUI: digits only)")
    return values


@click.command("fire")
@click.option("--patient", "patient_id", required=True, help="FHIR Patient id, e.g. example-dm-001.")
@click.option(
    "--hook",
    type=click.Choice(["patient-view", "order-select", "order-sign"]),
    default="patient-view",
    show_default=True,
    help="Which hook to fire; the order hooks go to the service's order-select / order-sign services.",
)
@click.option(
    "--order",
    "orders",
    multiple=True,
    metavar="RXCUI",
    callback=_rxcui,
    help="A draft MedicationRequest for this RxNorm code (order hooks; repeatable). For order-select all of "
    "them are the selections.",
)
@click.option("--encounter", "encounter_id", default=None, help="context.encounterId (optional).")
@click.option(
    "--fhir",
    "fhir_url",
    default=DEFAULT_FHIR,
    show_default=True,
    envvar="MYOSITIS_CDS_SANDBOX_FHIR",
    help="FHIR server the simulated EHR uses (sent as fhirServer).",
)
@click.option(
    "--service",
    "service_url",
    default=DEFAULT_SERVICE,
    show_default=True,
    envvar="MYOSITIS_CDS_SANDBOX_SERVICE",
    help="Base URL of the CDS service (without /cds-services).",
)
@click.option(
    "--prefetch/--no-prefetch",
    default=True,
    show_default=True,
    help="Fill prefetch from the FHIR server, or leave it out so the service fetches.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the raw response JSON.")
@click.option(
    "--token",
    default=SANDBOX_TOKEN,
    show_default=True,
    help="fhirAuthorization.access_token to pass ('' for none: an open FHIR server).",
)
@click.option(
    "--user", "user_id", default="Practitioner/example-rheumatologist", show_default=True, help="context.userId."
)
@click.option("--show-request", is_flag=True, help="Print the request sent (tokens masked) to stderr.")
def fire_command(
    patient_id: str,
    hook: str,
    orders: tuple[str, ...],
    encounter_id: str | None,
    fhir_url: str,
    service_url: str,
    prefetch: bool,
    as_json: bool,
    token: str,
    user_id: str,
    show_request: bool,
) -> None:
    """Act as the EHR: send a patient-view (or order-select / order-sign) request and print the cards."""
    from sandbox.ehr import EhrError, build_request, fire, service_id_for

    if hook == "patient-view" and orders:
        raise click.UsageError("--order goes with --hook order-select or order-sign")
    if hook != "patient-view" and not orders:
        raise click.UsageError(f"--hook {hook} needs at least one --order RXCUI")
    try:
        body = build_request(
            service_url,
            fhir_url,
            patient_id,
            prefetch=prefetch,
            access_token=token,
            user_id=user_id,
            hook=hook,
            orders=orders,
            encounter_id=encounter_id,
        )
        if show_request:
            shown = json.loads(json.dumps(body))
            if "fhirAuthorization" in shown:
                shown["fhirAuthorization"]["access_token"] = "***"
            click.echo(json.dumps(shown, indent=2), err=True)
        response = fire(service_url, body, service_id=service_id_for(hook))
    except EhrError as exc:
        _fail(str(exc))
        return
    _print_response(response, as_json)


# --------------------------------------------------------------------------- shared pieces


@contextmanager
def _service(database_dir: Path, port: int, **overrides: Any) -> Iterator[str]:
    """The CDS service, in-process, on 127.0.0.1 (werkzeug in a thread)."""
    from sandbox.appserver import sandbox_config, serve_in_thread
    from service import create_app

    app = create_app(sandbox_config(str(database_dir / "myositis-cds.sqlite3"), **overrides))
    with serve_in_thread(app, "127.0.0.1", port) as served:
        yield served.base_url


def _cors_origins(overrides: dict[str, Any]) -> list[str]:
    """The origins the sandbox's service answers CORS for: option, else environment, else default."""
    from sandbox.appserver import sandbox_config

    return list(sandbox_config("", **overrides)["CORS_ORIGINS"])


def _quiet_http_logs() -> None:
    # werkzeug's per-request lines would bury the cards in the demo output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


# --------------------------------------------------------------------------- sandbox


@click.command("sandbox")
@click.option(
    "--port",
    "fhir_port",
    default=8090,
    show_default=True,
    type=int,
    help="Port of the embedded FHIR server (0: any free port).",
)
@click.option(
    "--service-port", default=8080, show_default=True, type=int, help="Port of the CDS service (0: any free port)."
)
@click.option(
    "--require-token/--no-require-token",
    default=True,
    show_default=True,
    help=f"Make the FHIR server accept only the bearer token {SANDBOX_TOKEN!r}. The HL7 CDS Hooks Sandbox "
    "(an open launch, no token) needs --no-require-token.",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Browser origin allowed to call the service, e.g. http://localhost:8000 for a locally served HL7 "
    "sandbox; repeatable. Wins over MYOSITIS_CDS_CORS_ORIGINS, which wins over the default "
    "(https://sandbox.cds-hooks.org).",
)
def sandbox_command(fhir_port: int, service_port: int, require_token: bool, cors_origins: tuple[str, ...]) -> None:
    """Run a FHIR server with the example patients and the service (no auth) until Ctrl-C or SIGTERM."""
    token = SANDBOX_TOKEN if require_token else None
    overrides: dict[str, Any] = {"CORS_ORIGINS": list(cors_origins)} if cors_origins else {}
    with stop_on_signals():
        click.echo("Starting the embedded FHIR server (first run installs sekmet-fhir; this can take a minute)...")
        try:
            _run_sandbox(fhir_port, service_port, token, overrides)
        except KeyboardInterrupt:
            click.echo("\nStopped.")


def _run_sandbox(fhir_port: int, service_port: int, token: str | None, overrides: dict[str, Any]) -> None:
    from sandbox.fhir_server import FhirServerError, embedded_fhir_server
    from sandbox.loader import LoadError, load_bundles
    from sandbox.patients import list_patients

    with ExitStack() as stack:
        try:
            fhir = stack.enter_context(embedded_fhir_server(fhir_port or None, bearer_token=token))
            load_bundles(fhir.base_url, _example_paths(), access_token=token)
        except (FhirServerError, LoadError) as exc:
            _fail(str(exc))
            return
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="myositis-cds-sandbox-")))
        try:
            service_url = stack.enter_context(_service(tmp, service_port, **overrides))
        except OSError as exc:
            _fail(f"cannot listen on 127.0.0.1:{service_port}: {exc.strerror or exc} (try --service-port 0)")
            return
        patients = list_patients()
        click.echo("")
        click.secho("myositis-cds sandbox is running", bold=True)
        click.echo(f"  FHIR server (sekmet-fhir, in memory): {fhir.base_url}")
        click.echo(f"    bearer token required: {token!r}" if token else "    no token required")
        click.echo(f"  CDS service (client auth OFF, today pinned to 2026-11-23): {service_url}/cds-services")
        click.echo(f"    browser origins allowed (CORS): {', '.join(_cors_origins(overrides)) or 'none'}")
        click.echo(f"  {len(patients)} example patients loaded:")
        for p in patients:
            click.echo(f"    {p.id:<26} {p.title}")
        click.echo("")
        click.echo("Fire a patient-view hook (in another terminal):")
        common = f"--fhir {fhir.base_url} --service {service_url}" + ("" if token else " --token ''")
        click.echo(f"  myositis-cds fire --patient {patients[0].id} {common}")
        click.echo(f"  myositis-cds fire --patient {patients[0].id} {common} --no-prefetch")
        click.echo(f"  myositis-cds fire --patient example-no-myositis {common} --json")
        click.echo("")
        if token:
            # The HL7 sandbox refuses a FHIR server that answers 401 ("Cannot configure secured FHIR endpoints").
            click.echo("For the HL7 CDS Hooks Sandbox (open launch, no token) restart with --no-require-token.")
        else:
            click.echo("HL7 CDS Hooks Sandbox: FHIR server and CDS services discovery endpoint as above.")
        click.echo("")
        click.echo("Press Ctrl-C to stop.")
        while True:
            time.sleep(3600)


# --------------------------------------------------------------------------- demo


def _demo_offline(patient_id: str, as_json: bool, reason: str) -> None:
    from sandbox.ehr import build_offline_request, discovery, fire
    from sandbox.patients import get_patient

    if reason:
        click.secho(f"The embedded FHIR server is not available: {reason.splitlines()[0]}", fg="yellow", err=True)
        click.secho("Falling back: ", fg="yellow", err=True, nl=False)
    click.secho(
        "firing a request whose prefetch is built from the packaged Bundle, with no fhirServer "
        "(no FHIR server involved).",
        fg="yellow",
        err=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="myositis-cds-demo-") as tmp,
        _service(Path(tmp), 0, LOG_LEVEL="WARNING") as service_url,
    ):
        body = build_offline_request(discovery(service_url), get_patient(patient_id).bundle(), patient_id)
        _print_response(fire(service_url, body), as_json)


@click.command("demo")
@click.option(
    "--patient", "patient_id", default="example-dm-001", show_default=True, help="Which example patient to fire for."
)
@click.option("--json", "as_json", is_flag=True, help="Print the raw response JSON.")
@click.option("--offline", is_flag=True, help="Skip the FHIR server: prefetch built from the packaged Bundle.")
def demo_command(patient_id: str, as_json: bool, offline: bool) -> None:
    """One shot: FHIR server + example patients + service, fire one patient-view, print the cards."""
    from sandbox.ehr import EhrError, build_request, fire
    from sandbox.fhir_server import FhirServerError, embedded_fhir_server
    from sandbox.loader import LoadError, load_bundles
    from sandbox.patients import get_patient

    _quiet_http_logs()
    try:
        patient = get_patient(patient_id)
    except KeyError as exc:
        _fail(str(exc.args[0]))
        return
    if offline:
        _demo_offline(patient.id, as_json, "")
        return
    click.echo(
        "Starting the embedded FHIR server (first run installs sekmet-fhir; this can take a minute)...", err=True
    )
    with ExitStack() as stack:
        try:
            fhir = stack.enter_context(embedded_fhir_server(None, bearer_token=SANDBOX_TOKEN))
        except FhirServerError as exc:
            stack.close()
            _demo_offline(patient.id, as_json, str(exc))
            return
        try:
            load_bundles(fhir.base_url, _example_paths(), access_token=SANDBOX_TOKEN)
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="myositis-cds-demo-")))
            service_url = stack.enter_context(_service(tmp, 0, LOG_LEVEL="WARNING"))
            click.echo(
                f"FHIR server {fhir.base_url}, service {service_url}; firing patient-view for "
                f"{patient.id} with prefetch.\n  ({patient.title})\n",
                err=True,
            )
            body = build_request(service_url, fhir.base_url, patient.id, prefetch=True, access_token=SANDBOX_TOKEN)
            response = fire(service_url, body)
        except (LoadError, EhrError) as exc:
            _fail(str(exc))
            return
        _print_response(response, as_json)


# --------------------------------------------------------------------------- registration


def _review() -> click.Command:
    from sandbox.review import review_command

    return review_command


COMMANDS: Sequence[click.Command] = (load_command, fire_command, sandbox_command, demo_command, _review())


def register(group: click.Group) -> None:
    """Add the sandbox commands to the ``myositis-cds`` group."""
    for command in COMMANDS:
        group.add_command(command)
