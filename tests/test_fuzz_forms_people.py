"""The people's half of the form fuzzing (employees, coordinators, the kiosk, sign-in): every
state-changing rule outside /admin, fed hostile input by hypothesis on SQLite and PostgreSQL. What
is generated and asserted is described in tests/test_fuzz_forms.py and tests/form_fuzzing.py; the
rules are split over two modules so pytest-xdist runs the halves side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.form_fuzzing import PEOPLE_RULES, World, build_world, fuzz_rule


@pytest.fixture(scope="module")
def fuzz_world(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    yield from build_world(database_url, tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("endpoint", PEOPLE_RULES)
def test_hostile_input_never_breaks_a_form(
    fuzz_world: World, endpoint: str, tmp_path: Path
) -> None:
    fuzz_rule(fuzz_world, endpoint, tmp_path)
