"""The coordinator's inbox: requests, facility issues and room approvals in one queue."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("inbox", __name__, url_prefix="/inbox")
