"""Supplies and equipment requests for employees: the catalog, a request, my requests."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("requests", __name__, url_prefix=None)
