"""Characters that are digits to str.isdigit() but not numbers to int() ("²", "①") are refused
with the usual message, never a crash; real decimal digits of other scripts read as numbers."""

from __future__ import annotations

import pytest

from integrations.retry_after import retry_after_seconds
from portal.services.budgets import parse_amount
from portal.services.inbox import _is_id


@pytest.mark.parametrize("header", ["²", "①", "1²"])
def test_a_retry_after_of_superscript_digits_is_unreadable_not_a_crash(header):
    assert retry_after_seconds(header) is None


def test_a_retry_after_in_arabic_indic_digits_is_read():
    assert retry_after_seconds("٣٠") == 30


@pytest.mark.parametrize("typed", ["²00", "1.²"])
def test_a_budget_typed_with_superscripts_asks_for_an_amount(typed):
    with pytest.raises(ValueError, match="Enter an amount"):
        parse_amount(typed)


def test_an_inbox_filter_id_of_superscripts_is_not_an_id():
    assert not _is_id("²")
    assert _is_id("12")
