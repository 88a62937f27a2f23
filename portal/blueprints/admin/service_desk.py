"""Administration of the service desk: service_desk."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("service_desk", __name__, url_prefix="/service-desk")
