"""Replayable credentials are stored encrypted and only the app's own key opens them."""

import pytest

from portal.services.secret_box import SecretUnreadable, seal, unseal


def test_a_sealed_secret_opens_with_the_same_key_and_hides_the_plaintext() -> None:
    sealed = seal(b"app key", "caldav-password-123")
    assert "caldav-password-123" not in sealed
    assert sealed != seal(b"app key", "caldav-password-123")  # random IV: equal secrets differ
    assert unseal(b"app key", sealed) == "caldav-password-123"


def test_another_key_or_a_tampered_value_is_refused_with_a_clear_error() -> None:
    sealed = seal(b"app key", "s3cret")
    with pytest.raises(SecretUnreadable):
        unseal(b"another key", sealed)
    with pytest.raises(SecretUnreadable):
        unseal(b"app key", sealed[:-4] + "AAAA")
    with pytest.raises(SecretUnreadable):
        unseal(b"app key", "not a token")
