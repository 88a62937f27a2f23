"""Stock, purchase orders, the asset register, my equipment and equipment loans."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("inventory", __name__, url_prefix=None)
