"""While the database is unreachable (restarting, say), pages answer 503 with Retry-After, the
status clients and load balancers retry, rather than a 500 that reads like a bug."""

from __future__ import annotations


def test_a_page_that_needs_the_database_answers_503_while_it_is_unreachable(tmp_path):
    from portal.services.feeds import TOKEN_LENGTH
    from tests.conftest import make_test_app

    app = make_test_app(tmp_path, "postgresql://nobody@127.0.0.1:1/none")
    # A calendar client polling its feed: the token's lookup is the first database work.
    response = app.test_client().get(f"/feeds/{'a' * TOKEN_LENGTH}.ics")
    assert response.status_code == 503
    assert "Retry-After" in response.headers  # (rate-limited routes carry their window instead)
    assert "Temporarily unavailable" in response.get_data(as_text=True)
