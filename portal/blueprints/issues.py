"""Facility issues: report a problem (from a phone, or from the QR code on a room or desk), follow it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("issues", __name__, url_prefix="/issues")
