"""The `liaison` command: run the service, migrate, and set up schools and accounts."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from typer._click import Context
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from app.config import Settings, get_settings
from app.db import (
    create_engine,
    create_session_factory,
    default_workers,
    max_connections,
    pool_for,
)
from app.errors import LiaisonError, ValidationFailed
from app.models.principal import StaffRole
from app.models.school import (
    LA_CODE_HELP,
    LA_CODE_KINDS,
    SCHOOL_CODE_KINDS,
    Jurisdiction,
    Phase,
    SchoolCreate,
    check_la_code,
    check_school_in_la,
)
from app.services import principals, schools
from app.services.seed import seed_demo

T = TypeVar("T")

err = Console(stderr=True, soft_wrap=True)


def _fail(message: str, status: int) -> typer.Exit:
    """Say what went wrong in one line on stderr; the caller raises the exit it returns."""
    line = " ".join(message.split())
    err.print(f"[red]error:[/red] {escape(line)}")
    return typer.Exit(status)


class OneLineErrors(TyperGroup):
    """Every command's failure is one line on stderr, never a traceback: exit status 2 for
    bad usage or input, 1 for anything else that goes wrong."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, NoArgsIsHelpError, KeyboardInterrupt):
            raise
        except UsageError as exc:
            path = exc.ctx.command_path if exc.ctx else ctx.command_path
            hint = f" (see '{path} --help')"
            message = exc.format_message().replace("Value error, ", "").rstrip(".")
            raise _fail(message + hint, 2) from None
        except ClickException as exc:
            raise _fail(exc.format_message(), exc.exit_code) from None
        except ValidationError as exc:
            raise _fail(_reasons(exc), 2) from None
        except Exception as exc:
            text = str(exc).strip()
            what = type(exc).__name__ + (f": {text.splitlines()[0]}" if text else "")
            raise _fail(what, 1) from None


cli = typer.Typer(
    name="liaison",
    help="Liaison: the service behind school early-help casework.",
    no_args_is_help=True,
    add_completion=False,
    cls=OneLineErrors,
)

PACKAGE = Path(__file__).resolve().parent


def migrations_folder() -> Path:
    """The Alembic scripts, found from the code itself, whatever the working directory: an
    installed package carries them as app/migrations (pyproject.toml maps them there); a
    source checkout, and so an editable install, keeps them in alembic/ beside app/."""
    for folder in (PACKAGE / "migrations", PACKAGE.parent / "alembic"):
        if (folder / "env.py").is_file():
            return folder
    raise FileNotFoundError(f"no migrations in {PACKAGE / 'migrations'}: reinstall Liaison")


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _run(work: Callable[[Any], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run `work(session)` in one transaction, committed when it succeeds."""
    settings = settings or _checked_settings()

    async def main() -> T:
        engine = create_engine(settings)
        try:
            async with create_session_factory(engine)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except ValidationFailed as exc:
        raise _fail(exc.detail or exc.title, 2) from None
    except LiaisonError as exc:
        raise _fail(exc.detail or exc.title, 1) from None


def _checked_settings() -> Settings:
    """Settings, or a one-line reason and exit status 2 when they are unusable."""
    try:
        return get_settings()
    except ValidationError as exc:
        err.print(f"[red]refusing to start:[/red] {escape(_reasons(exc))}")
        raise typer.Exit(2) from None


def _reasons(exc: ValidationError, options: dict[str, str] | None = None) -> str:
    """A validation error's reasons in one line, each named by its option where it has one."""
    reasons = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        field = ".".join(str(p) for p in error["loc"])
        if options is not None and field:
            field = options.get(field, "--" + field.replace("_", "-"))
        reasons.append(f"{field}: {message}" if field else message)
    return "; ".join(reasons)


def _check_la(la: str | None, jurisdiction: Jurisdiction | None = None) -> None:
    """Exit status 2 and one line unless `la` is an LA code (of `jurisdiction`, when given)."""
    if la is not None:
        try:
            check_la_code(jurisdiction, la)
        except ValueError as exc:
            raise _fail(f"--la {la!r}: {exc}", 2) from None


def _no_reach_option(who: str) -> Any:
    return typer.Option(
        "--no-reach", help=f"Create it with no --school and no --la: {who} then reaches no school."
    )


def _check_reach(who: str, school: list[str] | None, la: str | None, no_reach: bool) -> None:
    """An account that reaches no school is made only when asked for (--no-reach), and then
    with a warning: it is almost always a forgotten --school or --la."""
    _check_la(la)
    if no_reach and (school or la):
        raise _fail(f"--no-reach is for a {who} with no --school and no --la", 2)
    if not (school or la or no_reach):
        raise _fail(
            f"a {who} with no --school and no --la reaches no school: give one, "
            "or --no-reach to create it anyway",
            2,
        )
    if no_reach:
        err.print(f"[yellow]warning:[/yellow] this {who} reaches no school (--no-reach)")


def alembic_config(database_url: str | None = None) -> Any:
    """Alembic's configuration, made here rather than read from alembic.ini (which the
    source keeps for `alembic revision`), so that it needs no file in the working directory."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_folder()))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = database_url or _checked_settings().database_url
    config.attributes["configure_logger"] = False
    return config


@cli.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Bring the database schema up to date (Alembic)."""
    from alembic import command
    from alembic.util.exc import CommandError

    config = alembic_config()
    try:
        command.upgrade(config, revision)
    except CommandError as exc:
        raise _fail(f"migrate {revision}: {exc}", 2) from None
    err.print(f"[green]database migrated to {escape(revision)}[/green]")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes (default: one per core on PostgreSQL, one on SQLite).",
        ),
    ] = None,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Run migrations before serving.")
    ] = False,
) -> None:
    """Serve the API with uvicorn.

    On PostgreSQL, unless LIAISON_DB_POOL_SIZE or LIAISON_DB_MAX_OVERFLOW is set, each
    worker's connection pool is sized from the workers and the server's max_connections
    (docs/scaling.md), so that all of them at their peak fit.
    """
    import uvicorn

    settings = _checked_settings()
    if migrate_first:
        migrate("head")
    workers = workers or default_workers(settings)
    sized = {"db_pool_size", "db_max_overflow"} & settings.model_fields_set
    if not settings.is_sqlite and not sized:
        try:
            limit = asyncio.run(max_connections(settings))
        except Exception as exc:  # the database is down: serve anyway; /readyz will say so
            err.print(f"[yellow]pool left at its defaults:[/yellow] {type(exc).__name__}")
        else:
            pool_size, overflow = pool_for(workers, limit)
            os.environ["LIAISON_DB_POOL_SIZE"] = str(pool_size)
            os.environ["LIAISON_DB_MAX_OVERFLOW"] = str(overflow)
            err.print(
                f"{workers} workers, each with a pool of {pool_size} (+{overflow}) connections "
                f"of PostgreSQL's {limit}"
            )
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_config=None,
    )


@cli.command()
def deliver(
    max_in_flight: Annotated[
        int, typer.Option(min=1, max=1000, help="Sends in flight at once, all receivers.")
    ] = 64,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve Prometheus metrics on this port."),
    ] = None,
) -> None:
    """Deliver webhooks until SIGTERM (or Ctrl-C): fan out new events, send what is due,
    retry, prune. Run as many as you like on PostgreSQL; on SQLite, only one process
    (and then turn off LIAISON_WEBHOOK_WORKER_IN_SERVE)."""
    import signal

    from prometheus_client import CollectorRegistry, start_http_server

    from app.logging import configure_logging
    from app.services.webhook_metrics import WebhookMetrics
    from app.services.webhook_worker import run_worker

    settings = _checked_settings()
    configure_logging(settings)
    registry = CollectorRegistry()
    metrics = WebhookMetrics(registry)
    if metrics_port is not None:
        start_http_server(metrics_port, registry=registry)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        engine = create_engine(settings)
        try:
            await run_worker(
                create_session_factory(engine),
                settings,
                stop,
                metrics=metrics,
                max_in_flight=max_in_flight,
            )
        finally:
            await engine.dispose()

    asyncio.run(main())


@cli.command("create-school")
def create_school(
    code: Annotated[
        str,
        typer.Option(
            help="The school's code: in England "
            + SCHOOL_CODE_KINDS[Jurisdiction.england]
            + " (e.g. 100000); in Wales "
            + SCHOOL_CODE_KINDS[Jurisdiction.wales]
            + " (e.g. 6602001); in Scotland "
            + SCHOOL_CODE_KINDS[Jurisdiction.scotland]
            + " (e.g. 5244439)."
        ),
    ],
    name: Annotated[str, typer.Option(help="School name.")],
    la: Annotated[
        str,
        typer.Option(
            "--la",
            help="The LA's code: in England and Wales "
            + LA_CODE_KINDS[Jurisdiction.england].split(",")[0]
            + " (e.g. 202, or 660 in Wales); in Scotland "
            + LA_CODE_KINDS[Jurisdiction.scotland]
            + ".",
        ),
    ],
    jurisdiction: Annotated[Jurisdiction, typer.Option()] = Jurisdiction.england,
    phase: Annotated[Phase, typer.Option()] = Phase.primary,
) -> None:
    """Create a school and print it as JSON."""
    school_in = _valid(
        SchoolCreate, code=code, name=name, la_code=la, jurisdiction=jurisdiction, phase=phase
    )
    _check_la(school_in.la_code, jurisdiction)
    try:
        check_school_in_la(jurisdiction, school_in.code, school_in.la_code)
    except ValueError as exc:
        raise _fail(f"--code {school_in.code!r}: {exc}", 2) from None

    async def work(session: Any) -> dict[str, Any]:
        school = await schools.create(session, None, school_in)
        return {"id": str(school.id), "code": school.code, "name": school.name}

    _print_json(_run(work))


@cli.command("create-client")
def create_client(
    name: Annotated[str, typer.Option(help="Who the client is, e.g. 'Riverside MIS'.")],
    scope: Annotated[str, typer.Option(help="Granted scopes, space-separated.")],
    school: Annotated[
        list[str] | None, typer.Option("--school", help="School code in reach (repeatable).")
    ] = None,
    la: Annotated[
        str | None, typer.Option("--la", help=f"Every school of this LA: {LA_CODE_HELP}.")
    ] = None,
    no_reach: Annotated[bool, _no_reach_option("it")] = False,
) -> None:
    """Create a machine client and print its client_id and client_secret (shown once).
    It reaches the schools given with --school and every school of the LA given with --la."""
    _check_reach("client", school, la, no_reach)

    async def work(session: Any) -> dict[str, Any]:
        new = await principals.create_client(
            session, name=name, scopes=scope, school_codes=school or [], la_code=la
        )
        return {
            "client_id": new.client.client_id,
            "client_secret": new.client_secret,
            "name": new.client.name,
            "scope": new.client.scopes,
            "schools": school or [],
            "la": la,
        }

    _print_json(_run(work))


@cli.command("create-staff")
def create_staff(
    username: Annotated[str, typer.Option(help="Sign-in name, usually an email address.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    role: Annotated[StaffRole, typer.Option()],
    school: Annotated[
        list[str] | None, typer.Option("--school", help="School code (repeatable).")
    ] = None,
    la: Annotated[
        str | None, typer.Option("--la", help=f"Every school of this LA: {LA_CODE_HELP}.")
    ] = None,
    external_subject: Annotated[
        str | None, typer.Option(help="Subject of this person in the LA's identity provider.")
    ] = None,
    password_env: Annotated[
        str, typer.Option(help="Read the password from this environment variable if set.")
    ] = "LIAISON_STAFF_PASSWORD",
    no_reach: Annotated[bool, _no_reach_option("the account")] = False,
) -> None:
    """Create a staff account. The password comes from the environment or a prompt. It
    reaches the schools given with --school and every school of the LA given with --la."""
    _check_reach("staff account", school, la, no_reach)
    password = os.environ.get(password_env)
    if password is None and external_subject is None:
        if not sys.stdin.isatty():
            raise _fail(f"set {password_env} or --external-subject", 2)
        password = getpass.getpass("Password: ")
    if password is not None and len(password) < 12:
        raise _fail("a password has at least 12 characters", 2)

    async def work(session: Any) -> dict[str, Any]:
        staff = await principals.create_staff(
            session,
            username=username,
            display_name=name,
            role=role,
            password=password,
            school_codes=school or [],
            la_code=la,
            external_subject=external_subject,
        )
        return {"id": str(staff.id), "username": staff.username, "role": staff.role}

    _print_json(_run(work))


@cli.command("seed-demo")
def seed_demo_command() -> None:
    """Load demo data (idempotent): an LA, schools, pupils, one account per role and the
    directory's partner services."""
    settings = _checked_settings()
    if settings.environment == "production":
        err.print("[red]error:[/red] demo data is never loaded in production")
        raise typer.Exit(1)
    credentials = _run(seed_demo, settings)
    _print_json(credentials)


@cli.command("export-openapi")
def export_openapi(
    output: Annotated[Path, typer.Option(help="Where to write the schema.")] = Path(
        "openapi/openapi.json"
    ),
) -> None:
    """Write the OpenAPI schema the app serves to a file (checked in CI)."""
    from app.main import create_app, openapi_document

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(openapi_document(create_app(Settings())))
    err.print(f"[green]wrote {output}[/green]")


directory_cli = typer.Typer(
    help="The service directory (Open Referral UK).", no_args_is_help=True, add_completion=False
)
cli.add_typer(directory_cli, name="directory")


@directory_cli.command("import")
def import_directory(
    url: Annotated[
        str, typer.Argument(help="The feed's ORUK base URL, e.g. https://example.gov.uk/api/v1.")
    ],
    per_page: Annotated[int, typer.Option(min=1, max=1000, help="Services per page.")] = 100,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for each answer.")] = 30,
    strict: Annotated[
        bool, typer.Option(help="Stop at the first invalid service instead of skipping it.")
    ] = False,
    la: Annotated[
        str | None,
        typer.Option(
            "--la",
            help="Import as this LA's records (default: the operator's, for every LA); "
            f"{LA_CODE_HELP}.",
        ),
    ] = None,
) -> None:
    """Pull a council's ORUK feed into the directory: every service, upserted by id.

    All or nothing: a page the feed cannot serve stops the import and nothing is written.
    Invalid services are skipped with a warning (or stop it, with --strict). What it writes
    belongs to the operator, or to the LA given with --la; records that belong to someone
    else are left as they are and reported.
    """
    import httpx
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from app.services import directory_import

    settings = _checked_settings()
    if not url.startswith(("http://", "https://")):
        err.print("[red]error:[/red] the feed URL starts with http:// or https://")
        raise typer.Exit(2)
    _check_la(la)
    columns = (TextColumn("importing services"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("services", total=None)

        def advance(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        async def work(session: Any) -> directory_import.ImportReport:
            transport = httpx.AsyncHTTPTransport(retries=2)
            headers = {"User-Agent": "liaison-directory-import"}
            async with httpx.AsyncClient(
                transport=transport, timeout=timeout, follow_redirects=True, headers=headers
            ) as http:
                return await directory_import.import_feed(
                    session,
                    url,
                    http,
                    per_page=per_page,
                    strict=strict,
                    on_progress=advance,
                    owner=la,
                )

        report = _run(work, settings)
    for warning in report.skipped:
        err.print(f"[yellow]skipped:[/yellow] {escape(warning)}")
    _print_json(
        {
            "feed": report.feed,
            "pages": report.pages,
            "services": report.services,
            "created": report.created,
            "updated": report.updated,
            "skipped": len(report.skipped),
        }
    )


reference_cli = typer.Typer(
    help="National reference data (and, for an LA, its own), as the operator adds it. LA "
    "admins add their own LA's entries through the API.",
    no_args_is_help=True,
    add_completion=False,
)
cli.add_typer(reference_cli, name="reference")

LaOption = Annotated[
    str | None,
    typer.Option(
        "--la",
        help=f"For this LA only (default: the national list, for every LA): {LA_CODE_HELP}.",
    ),
]
M = TypeVar("M", bound=BaseModel)


def _valid(model: type[M], **values: Any) -> M:
    """The model, or one line of reasons (each named by its option) and exit status 2."""
    _check_la(values.get("la_code"), values.get("jurisdiction"))
    try:
        return model(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise _fail(_reasons(exc, {"la_code": "--la"}), 2) from None


def _printed(row: Any) -> None:
    _print_json({k: v for k, v in row.model_dump().items() if k != "id"})


@reference_cli.command("concern")
def add_concern(
    code: Annotated[str, typer.Option(help="e.g. online_safety")],
    label: Annotated[str, typer.Option()],
    la: LaOption = None,
) -> None:
    """Add a referral concern."""
    from app.models.referral import ConcernCreate, ReferralConcern
    from app.services import reference

    new = _valid(ConcernCreate, code=code, label=label, la_code=la)
    row = ReferralConcern(la_code=new.la_code or reference.NATIONAL, code=new.code, label=new.label)
    _printed(_run(lambda session: reference.add(session, row, "concern")))


@reference_cli.command("level-of-need")
def add_level_of_need(
    code: Annotated[str, typer.Option(help="e.g. targeted_early_help")],
    label: Annotated[str, typer.Option()],
    rank: Annotated[int, typer.Option(min=0, max=100, help="Order, lowest need first.")],
    la: LaOption = None,
) -> None:
    """Add a level of need to the default set (or to an LA's own set, with --la)."""
    from app.models.referral import NeedLevelCreate
    from app.services import referral_terms

    new = _valid(NeedLevelCreate, code=code, label=label, rank=rank, la_code=la)
    la_code = new.la_code or referral_terms.DEFAULT_SET
    _printed(_run(lambda session: referral_terms.add_level_for(session, la_code, new)))


@reference_cli.command("outcome-category")
def add_outcome_category(
    code: Annotated[str, typer.Option(help="e.g. housing_secured")],
    label: Annotated[str, typer.Option()],
    la: LaOption = None,
) -> None:
    """Add an outcome category."""
    from app.models.plan import OutcomeCategory, OutcomeCategoryCreate
    from app.services import reference

    new = _valid(OutcomeCategoryCreate, code=code, label=label, la_code=la)
    row = OutcomeCategory(la_code=new.la_code or reference.NATIONAL, code=new.code, label=new.label)
    _printed(_run(lambda session: reference.add(session, row, "outcome category")))


@reference_cli.command("instrument")
def add_instrument(
    code: Annotated[str, typer.Option(help="e.g. sdq_total")],
    label: Annotated[str, typer.Option()],
    min_score: Annotated[float, typer.Option("--min", help="Lowest score.")],
    max_score: Annotated[float, typer.Option("--max", help="Highest score.")],
    unit: Annotated[str | None, typer.Option(help="e.g. points, years.")] = None,
    domain: Annotated[
        list[str] | None, typer.Option("--domain", help="A domain scored apart (repeatable).")
    ] = None,
    la: LaOption = None,
) -> None:
    """Add a measure instrument."""
    from app.models.measure import InstrumentCreate, MeasureInstrument
    from app.services import reference

    new = _valid(
        InstrumentCreate,
        code=code,
        label=label,
        min_score=min_score,
        max_score=max_score,
        unit=unit,
        domains=domain or [],
        la_code=la,
    )
    values = new.model_dump(exclude={"la_code"})
    row = MeasureInstrument(**values, la_code=new.la_code or reference.NATIONAL)
    _printed(_run(lambda session: reference.add(session, row, "instrument")))


@reference_cli.command("attendance-code")
def add_attendance_code(
    jurisdiction: Annotated[Jurisdiction, typer.Option()],
    code: Annotated[str, typer.Option(help="The code as registers carry it, e.g. 31.")],
    description: Annotated[str, typer.Option()],
    category: Annotated[str, typer.Option(help="e.g. present, unauthorised_absence.")],
    effective_from: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD).")],
    effective_to: Annotated[
        str | None, typer.Option("--to", help="First day it no longer applies (YYYY-MM-DD).")
    ] = None,
    code_set: Annotated[str, typer.Option(help="Which set it belongs to.")] = "local",
    late: Annotated[bool, typer.Option(help="Counts as late.")] = False,
    unexplained: Annotated[bool, typer.Option(help="Whereabouts unknown (N/O-like).")] = False,
) -> None:
    """Add a code to a jurisdiction's attendance code table: it applies to every school of
    the jurisdiction, so only the operator adds one."""
    from app.models.attendance import CodeCreate
    from app.services import attendance_codes

    new = _valid(
        CodeCreate,
        jurisdiction=jurisdiction,
        code=code,
        description=description,
        category=category,
        effective_from=effective_from,
        effective_to=effective_to,
        code_set=code_set,
        late=late,
        unexplained=unexplained,
    )
    made = _run(lambda session: attendance_codes.create(session, new))
    _print_json(attendance_codes.present(made).model_dump(mode="json"))


# --- retention ---------------------------------------------------------------------------

retention_cli = typer.Typer(
    help="The retention schedule, and disposal of what is past it.",
    no_args_is_help=True,
    add_completion=False,
)
cli.add_typer(retention_cli, name="retention")


def _schedule(settings: Settings) -> Any:
    from app.services.retention_schedule import ScheduleError, load

    try:
        return load(settings.retention_schedule)
    except ScheduleError as exc:
        err.print(f"[red]refusing to start:[/red] {exc}")
        raise typer.Exit(2) from None


@retention_cli.command("schedule")
def retention_schedule_command(
    today: Annotated[
        str | None, typer.Option(help="Show cutoffs as on this date (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Print the effective retention schedule: per record type and jurisdiction, the period,
    the action, what the clock starts from, the source, and today's cutoff."""
    from rich.table import Table

    settings = _checked_settings()
    schedule = _schedule(settings)
    day = _day(today)
    table = Table(title="Retention schedule", show_lines=False)
    for name in ("record type", "jurisdiction", "period", "action", "cutoff", "clock", "source"):
        table.add_column(name, overflow="fold")
    for rule in schedule.rules:
        table.add_row(
            rule.record_type.name,
            rule.jurisdiction,
            str(rule.period) + (" (configured)" if rule.overridden else ""),
            rule.record_type.action.value,
            rule.cutoff(day).isoformat(),
            rule.record_type.clock,
            rule.record_type.source,
        )
    Console(width=200).print(table)


def _day(value: str | None) -> Any:
    from datetime import UTC, date, datetime

    if value is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@retention_cli.command("run")
def retention_run_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; change nothing.")
    ] = False,
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Keys claimed per batch (transaction).")
    ] = 500,
    today: Annotated[
        str | None, typer.Option(help="Run as on this date (YYYY-MM-DD); default today (UTC).")
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Only this record type (repeatable).")
    ] = None,
    pause_ms: Annotated[
        int,
        typer.Option(
            min=0,
            max=60_000,
            help="Wait between batches as long as the batch took, at most this, so requests "
            "served meanwhile keep their pace (bench/retention.py: p99 of reads 1.6-1.8x idle "
            "at 100 ms, 8x with no pause).",
        ),
    ] = 100,
) -> None:
    """Dispose of (delete, or de-identify) every record past its retention period, in
    batches, skipping held records; safe to run from cron on several machines at once."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from app.services.document_store import store_for
    from app.services.retention import Hooks, TypeSummary, run_retention

    settings = _checked_settings()
    schedule = _schedule(settings)
    day = _day(today)
    out = Console()

    class Bar(Hooks):
        def __init__(self, progress: Progress) -> None:
            self.progress = progress
            self.tasks: dict[tuple[str, str], Any] = {}

        def planned(self, summary: TypeSummary) -> None:
            if summary.due and not dry_run:
                self.tasks[(summary.record_type, summary.jurisdiction)] = self.progress.add_task(
                    f"{summary.record_type} ({summary.jurisdiction})", total=summary.due
                )

        def disposed(self, summary: TypeSummary, rows: int) -> None:
            task = self.tasks.get((summary.record_type, summary.jurisdiction))
            if task is not None:
                self.progress.advance(task, rows)

    async def main() -> Any:
        engine = create_engine(settings)
        try:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=err,
                transient=False,
            ) as progress:
                return await run_retention(
                    create_session_factory(engine),
                    schedule,
                    today=day,
                    dry_run=dry_run,
                    batch_size=batch_size,
                    only=only,
                    hooks=Bar(progress),
                    pause=pause_ms / 1000,
                    store=store_for(settings),
                )
        finally:
            await engine.dispose()

    summary = asyncio.run(main())
    title = f"Retention {'dry run' if dry_run else 'run'} as on {summary.today.isoformat()}"
    table = Table(title=title)
    counts = ("due", "disposed", "held", "seconds")
    for name in ("record type", "jurisdiction", "action", "cutoff", *counts):
        table.add_column(name, justify="right" if name in counts else "left")
    for part in summary.types:
        table.add_row(
            part.record_type,
            part.jurisdiction,
            part.action,
            part.cutoff.isoformat(),
            str(part.due),
            str(part.disposed),
            str(part.held),
            f"{part.seconds:.2f}",
        )
    Console(width=160).print(table)
    out.print(
        f"disposed {summary.disposed} rows in {summary.seconds:.2f} s "
        f"({summary.rows_per_second:.0f} rows/s)"
        + ("; dry run: nothing changed" if dry_run else "")
    )


@cli.command("attendance-partitions")
def attendance_partitions_command(
    ahead: Annotated[
        int,
        typer.Option(min=0, max=10, help="Academic years after the current one to make."),
    ] = 1,
    year: Annotated[
        list[int] | None,
        typer.Option(
            "--year",
            help="Make this academic year's partition instead, by the year it starts in "
            "(repeatable).",
        ),
    ] = None,
) -> None:
    """Make the attendance mark table's partitions ahead of time (PostgreSQL): the current
    academic year and the next --ahead, or each --year. Running it again changes nothing;
    marks already in the DEFAULT partition for a new year are moved into it."""
    from app.services import attendance_partitions

    years = year or attendance_partitions.years_ahead(ahead)

    async def work(session: Any) -> list[Any]:
        return await attendance_partitions.ensure(session, years)

    made = _run(work)
    _print_json(
        [
            {
                "partition": p.name,
                "from": p.starts,
                "until": p.ends,
                "created": p.created,
                "moved_from_default": p.moved,
            }
            for p in made
        ]
    )


def main() -> None:
    cli()
