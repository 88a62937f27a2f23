"""Command-line operations: `flask --app wsgi <command>` or the `foyer <command>` console script."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup
from sqlalchemy.orm import Session

from portal.errors import RuleViolation
from portal.models import Role, Site
from portal.services import accounts, demo_company
from portal.services.audit import Actor


def _writer() -> Session:
    _reader, writer = current_app.extensions["foyer.sessions"]
    return writer()


def register_commands(app: Flask) -> None:
    @app.cli.command("upgrade-db")
    def upgrade_db() -> None:
        """Create or migrate the database schema to the newest revision."""
        from portal.schema import upgrade

        engine = current_app.extensions["foyer.engine"]
        upgrade(engine)
        click.echo(f"database at {engine.url.render_as_string(hide_password=True)} is up to date")

    @app.cli.command("seed-demo")
    def seed_demo() -> None:
        """Load the demo company (idempotent) and print its sign-ins."""
        from pathlib import Path

        from portal.db import utcnow
        from portal.services import demo_history, demo_service_desk, demo_visitors

        uploads = Path(current_app.extensions["foyer.settings"].instance_path) / "uploads"
        with _writer() as session, session.begin():
            logins = demo_company.seed_demo(session)
            kiosks = demo_visitors.seed_visitors(session, utcnow())
            desk = demo_service_desk.seed_service_desk(session, utcnow(), uploads)
            demo_history.seed_spend(session)  # needs the catalog: months of spend and budgets
            demo_history.seed_tickets_and_visits(session)  # months of tickets and visits
        click.echo("\nDemo company loaded. Sign in at http://127.0.0.1:5000 with:")
        for login in logins:
            click.echo(
                f"  {login.role:<24} {login.email:<28} password: {demo_company.DEMO_PASSWORD}"
            )
        click.echo(
            "\nLobby kiosks: open http://127.0.0.1:5000/kiosk on a tablet and enter its code"
        )
        for kiosk in kiosks:
            state = f"pairing code {kiosk.pairing_code}" if kiosk.pairing_code else "paired"
            click.echo(f"  {kiosk.site_name + ' · ' + kiosk.name:<24} {state}")
        click.echo(
            "  (codes last 10 minutes; `flask kiosk-code SITE` or Admin › Kiosks gives a new one)"
        )
        if desk is not None:
            click.echo(
                f"\nService desk: {desk.items} catalog items, {desk.issues} facility issues, "
                f"{desk.requests} requests, {desk.assets} assets (the catalog is at /catalog, "
                "the coordinator's inbox at /inbox)"
            )
        click.echo("")

    @app.cli.command("kiosk-code")
    @click.argument("site_slug")
    @click.option("--name", default=None, help="the kiosk's name (default: the site's first)")
    def kiosk_code(site_slug: str, name: str | None) -> None:
        """Print a new pairing code for a site's lobby kiosk (creating the kiosk if needed)."""
        from sqlalchemy import select

        from portal.db import utcnow
        from portal.models import KioskDevice
        from portal.services import kiosk_devices
        from portal.services.audit import Actor

        actor = Actor.system("cli")
        with _writer() as session, session.begin():
            site = _site(session, site_slug)
            query = select(KioskDevice).where(
                KioskDevice.site_id == site.id, KioskDevice.revoked_at.is_(None)
            )
            if name:
                query = query.where(KioskDevice.name == name)
            device = session.scalar(query.order_by(KioskDevice.id))
            if device is None:
                device, code = kiosk_devices.create(
                    session, actor, site, name or "Main lobby", now=utcnow()
                )
            else:
                code = kiosk_devices.new_pairing_code(session, actor, device, now=utcnow())
        click.echo(f"{site.name} · {device.name}: pairing code {code} (valid 10 minutes)")

    @app.cli.command("create-user")
    @click.option("--email", required=True)
    @click.option("--name", required=True)
    @click.option("--department", default="")
    @click.option("--site", "site_slug", default=None, help="home site slug")
    @click.option("--password", is_flag=True, help="prompt for a password (local sign-in)")
    def create_user(
        email: str, name: str, department: str, site_slug: str | None, password: bool
    ) -> None:
        """Create an account."""
        secret = (
            click.prompt("Password", hide_input=True, confirmation_prompt=True)
            if password
            else None
        )
        with _writer() as session, session.begin():
            site = _site(session, site_slug) if site_slug else None
            try:
                user = accounts.create_user(
                    session,
                    Actor.system("cli"),
                    email=email,
                    name=name,
                    department=department,
                    password=secret,
                    home_site=site,
                )
            except RuleViolation as violation:
                raise click.ClickException(violation.message) from violation
        click.echo(f"created {user.email} (id {user.id})")

    @app.cli.command("grant-role")
    @click.argument("email")
    @click.argument("role", type=click.Choice([r.value for r in Role]))
    @click.option("--site", "site_slug", default=None, help="site slug, for coordinators")
    def grant_role(email: str, role: str, site_slug: str | None) -> None:
        """Give a person the coordinator (of a site) or admin role."""
        with _writer() as session, session.begin():
            user = accounts.find_by_email(session, email)
            if user is None:
                raise click.ClickException(f"no account for {email}")
            site = _site(session, site_slug) if site_slug else None
            try:
                accounts.grant_role(session, Actor.system("cli"), user, role, site)
            except RuleViolation as violation:
                raise click.ClickException(violation.message) from violation
        click.echo(f"{email} is now {role}{' of ' + site_slug if site_slug else ''}")

    @app.cli.command("deactivate-user")
    @click.argument("email")
    def deactivate_user(email: str) -> None:
        """Deactivate an account and end all its sessions."""
        with _writer() as session, session.begin():
            user = accounts.find_by_email(session, email)
            if user is None:
                raise click.ClickException(f"no account for {email}")
            try:
                accounts.deactivate_user(session, Actor.system("cli"), user)
            except RuleViolation as violation:
                raise click.ClickException(violation.message) from violation
        click.echo(f"{email} is deactivated")

    # -- Backup and restore (portal/services/backups.py) ----------------------------------------
    @app.cli.command("backup")
    @click.argument("path", type=click.Path(path_type=Path))
    def backup(path: Path) -> None:
        """Write the database and the uploads folder into one archive (PATH: a file or a folder)."""
        import time

        from portal.db import utcnow
        from portal.services import backups

        settings = current_app.extensions["foyer.settings"]
        started = time.monotonic()
        try:
            written, manifest = backups.back_up(
                current_app.extensions["foyer.engine"],
                Path(settings.instance_path) / "uploads",
                path,
                secret_key=settings.secret_key,
                now=utcnow(),
            )
        except backups.BackupFailed as failed:
            raise click.ClickException(str(failed)) from failed
        click.echo(
            f"backed up {manifest.backend} schema {manifest.schema_revision}: "
            f"{len(manifest.tables)} tables, {manifest.rows} rows, {manifest.upload_files} "
            f"uploaded files -> {written} ({written.stat().st_size / 1_048_576:.1f} MB, "
            f"{time.monotonic() - started:.1f} s)"
        )
        click.echo("Keep the SECRET_KEY apart from the backup: sealed credentials need it.")

    @app.cli.command("restore")
    @click.argument("path", type=click.Path(path_type=Path))
    @click.option("--force", is_flag=True, help="replace a database and uploads that are not empty")
    def restore(path: Path, force: bool) -> None:
        """Restore an archive written by `backup` into this installation's (empty) database."""
        from alembic.script import ScriptDirectory

        from portal.schema import alembic_config
        from portal.services import backups

        settings = current_app.extensions["foyer.settings"]
        engine = current_app.extensions["foyer.engine"]
        script = ScriptDirectory.from_config(alembic_config(settings.database_url))
        try:
            restored = backups.restore(
                engine,
                path,
                Path(settings.instance_path) / "uploads",
                secret_key=settings.secret_key,
                known_revisions={revision.revision for revision in script.walk_revisions()},
                force=force,
            )
        except backups.BackupFailed as failed:
            raise click.ClickException(str(failed)) from failed
        manifest = restored.manifest
        click.echo(
            f"restored the backup of {manifest.created_at}: {len(restored.tables)} tables, "
            f"{sum(restored.tables.values())} rows, {restored.upload_files} uploaded files"
        )
        if not restored.counts_match:
            for table, (expected, found) in sorted(restored.differences.items()):
                click.echo(f"  {table}: {expected} rows in the backup, {found} now", err=True)
            raise click.ClickException("the restored counts differ from the backup's manifest")
        click.echo("row counts and uploads match the backup")
        if manifest.schema_revision != script.get_current_head():
            click.echo("The backup predates this Foyer's schema: run `flask upgrade-db` next.")
        if not restored.key_matches:
            click.echo(
                "Warning: this installation's SECRET_KEY differs from the one at backup time; "
                "stored integration credentials (calendars, access control) must be entered again, "
                "and everyone signs in again.",
                err=True,
            )


def _site(session: Session, slug: str) -> Site:
    from sqlalchemy import select

    site = session.scalar(select(Site).where(Site.slug == slug))
    if site is None:
        raise click.ClickException(f"no site with slug {slug!r}")
    return site


def main() -> None:
    from portal import create_app

    FlaskGroup(create_app=create_app)()
