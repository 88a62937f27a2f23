"""PLACEHOLDER."""

from flask import Blueprint

bp = Blueprint("door_events", __name__)
