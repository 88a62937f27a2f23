"""Characters that are digits to str.isdigit() but not numbers to int() ("²", "①") are refused
with the usual message, never a crash; real decimal digits of other scripts read as numbers."""

from __future__ import annotations

import pytest

from integrations.retry_after import retry_after_seconds
from portal.db import db_id, db_int
from portal.services.budgets import parse_amount


@pytest.mark.parametrize("header", ["²", "①", "1²"])
def test_a_retry_after_of_superscript_digits_is_unreadable_not_a_crash(header):
    assert retry_after_seconds(header) is None


def test_a_retry_after_in_arabic_indic_digits_is_read():
    assert retry_after_seconds("٣٠") == 30


@pytest.mark.parametrize("typed", ["²00", "1.²"])
def test_a_budget_typed_with_superscripts_asks_for_an_amount(typed):
    with pytest.raises(ValueError, match="Enter an amount"):
        parse_amount(typed)


@pytest.mark.parametrize(
    "posted", ["²", "①", "1²", "٣", "", "0", "-5", "99999999999", "2147483648"]
)
def test_what_is_not_an_id_the_database_can_hold_is_no_id(posted):
    assert db_id(posted) is None


def test_ids_and_integers_the_database_can_hold_are_read():
    assert db_id("12") == 12 and db_id(" 7 ") == 7 and db_id("2147483647") == 2**31 - 1
    assert db_int("-3") == -3
    with pytest.raises(ValueError):
        db_int("2147483648")
