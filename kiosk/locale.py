"""The kiosk's languages: chosen on the welcome screen, kept in a cookie for one visitor's flow,
back to English on "start over" or when the kiosk has been left alone. The portal stays English."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, request
from flask_babel import Babel

LANGUAGE_COOKIE = "foyer_kiosk_lang"
DEFAULT = "en"
# Each language named in itself, as a visitor looks for it.
LANGUAGES: dict[str, str] = {"en": "English", "de": "Deutsch", "es": "Español"}
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def chosen_language() -> str:
    lang = request.cookies.get(LANGUAGE_COOKIE, DEFAULT)
    return lang if lang in LANGUAGES else DEFAULT


def select_locale() -> str:
    if request.blueprint == "kiosk":
        return chosen_language()
    return DEFAULT


def configure_babel(app: Flask) -> None:
    if "babel" in app.extensions:  # someone set Babel up already: add our catalogue to theirs
        babel_config = app.extensions["babel"]
        babel_config.translation_directories.append(str(TRANSLATIONS))
        return
    Babel(
        app,
        default_locale=DEFAULT,
        default_translation_directories=str(TRANSLATIONS),
        locale_selector=select_locale,
    )
