"""PLACEHOLDER."""

from flask import Blueprint

bp = Blueprint("metrics", __name__)
