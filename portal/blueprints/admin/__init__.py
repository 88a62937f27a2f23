"""Administration: one module per resource, nested under /admin."""

from flask import Blueprint

from portal.blueprints.admin import (
    access_control,
    audit_log,
    booking_rules,
    calendar_links,
    catalog,
    jobs,
    kiosks,
    outbox,
    service_desk,
    settings,
    spaces,
    users,
    visitor_settings,
)

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.register_blueprint(users.bp)
bp.register_blueprint(audit_log.bp)
bp.register_blueprint(booking_rules.bp)
bp.register_blueprint(spaces.bp)
bp.register_blueprint(outbox.bp)
bp.register_blueprint(kiosks.bp)
bp.register_blueprint(visitor_settings.bp)
bp.register_blueprint(catalog.bp)
bp.register_blueprint(service_desk.bp)
bp.register_blueprint(calendar_links.bp)
bp.register_blueprint(access_control.bp)
bp.register_blueprint(jobs.bp)
bp.register_blueprint(settings.bp)
