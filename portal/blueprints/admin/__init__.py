"""Administration: one module per resource, nested under /admin."""

from flask import Blueprint

from portal.blueprints.admin import audit_log, users

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.register_blueprint(users.bp)
bp.register_blueprint(audit_log.bp)
