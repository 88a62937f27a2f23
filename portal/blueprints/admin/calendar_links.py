"""PLACEHOLDER."""

from flask import Blueprint

bp = Blueprint("calendar_links", __name__)
