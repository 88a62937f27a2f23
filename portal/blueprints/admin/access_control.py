"""PLACEHOLDER."""

from flask import Blueprint

bp = Blueprint("access_control", __name__)
