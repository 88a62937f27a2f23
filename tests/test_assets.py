"""The asset register: a coordinator adds a laptop under its tag, hands it over, the employee
accepts it in My equipment and later asks to return it, the coordinator takes it back, marks things
lost or retired; every step is in the asset's history. Nobody else can see or touch it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.errors import NotFound, RuleViolation
from portal.models import Asset, AssetEvent, AssetStatus, Notice, OutboxMessage, Site, User
from portal.services import assets
from portal.services.audit import Actor
from tests import factories
from tests import service_desk_factories as sd

COORDINATOR = "cora@example.com"
HOLDER = "hugo@example.com"
OTHER = "otto@example.com"
NY_COORDINATOR = "nate@example.com"


@pytest.fixture
def office(db: Session) -> dict[str, Any]:
    berlin = factories.site(db, "berlin")
    new_york = factories.site(db, "new-york", time_zone="America/New_York")
    laptop = sd.item(db, "Laptop 14", tracked=True)
    people = {
        "berlin": berlin,
        "new_york": new_york,
        "laptop": laptop,
        "pens": sd.item(db, "Pens", category="office_supplies"),
        "coordinator": factories.user(
            db, name="Cora Coordinator", email=COORDINATOR, coordinator_of=berlin
        ),
        "holder": factories.user(db, name="Hugo Holder", email=HOLDER, home_site=berlin),
        "other": factories.user(db, name="Otto Other", email=OTHER, home_site=berlin),
        "ny_coordinator": factories.user(
            db, name="Nate Coordinator", email=NY_COORDINATOR, coordinator_of=new_york
        ),
    }
    db.commit()
    return people


def browser(app: Flask, email: str) -> Any:
    from tests.conftest import Browser

    app.test_client_class = Browser
    client = app.test_client()
    client.sign_in(email)
    return client


def add(db: Session, office: dict[str, Any], tag: str = "IT-0001", **kwargs: Any) -> Asset:
    asset = assets.add_asset(
        db,
        Actor.system("tests"),
        office["coordinator"],
        office["berlin"],
        assets.NewAsset(item_id=office["laptop"].id, asset_tag=tag, **kwargs),
        now=utcnow(),
    )
    db.commit()
    return asset


def handed_over(db: Session, office: dict[str, Any], tag: str = "IT-0001") -> Asset:
    asset = add(db, office, tag, serial_number="SN-123")
    assets.hand_over(
        db, Actor.system("tests"), asset, office["holder"], by=office["coordinator"], now=utcnow()
    )
    db.commit()
    return asset


def actions(db: Session, asset: Asset) -> list[str]:
    return list(
        db.scalars(
            select(AssetEvent.action).where(AssetEvent.asset_id == asset.id).order_by(AssetEvent.id)
        )
    )


# ---------------------------------------------------------------------------------------------
# The whole life of an asset, through the pages


def test_a_laptop_goes_from_the_register_to_an_employee_and_back(app, db, office):
    cora = browser(app, COORDINATOR)
    response = cora.submit(
        "/assets/new",
        {
            "site_id": office["berlin"].id,
            "item_id": office["laptop"].id,
            "asset_tag": " it-0042 ",
            "serial_number": "C02XK1",
        },
    )
    assert response.status_code == 303
    asset = db.scalar(select(Asset).where(Asset.asset_tag == "IT-0042"))
    assert asset is not None and asset.status == AssetStatus.IN_STOCK
    assert response.headers["Location"].endswith(f"/assets/{asset.id}")

    response = cora.submit(
        f"/assets/{asset.id}/hand-over",
        {"email": HOLDER.upper(), "note": "With charger", "version": asset.version},
    )
    assert response.status_code == 303
    db.expire_all()
    assert asset.status == AssetStatus.ASSIGNED and asset.holder_id == office["holder"].id
    mail = db.scalar(select(OutboxMessage).where(OutboxMessage.to_address == HOLDER))
    assert mail is not None and "IT-0042" in mail.subject and "With charger" in mail.text_body
    notice = db.scalar(select(Notice).where(Notice.user_id == office["holder"].id))
    assert notice is not None and "Please confirm" in notice.message

    hugo = browser(app, HOLDER)
    page = hugo.get("/equipment").get_data(as_text=True)
    assert "Laptop 14" in page and "IT-0042" in page and "C02XK1" in page
    assert "Accept" in page and "Handed over" in page
    assert (
        hugo.submit(f"/equipment/assets/{asset.id}/accept", {"version": asset.version}).status_code
        == 303
    )
    db.expire_all()
    assert asset.status == AssetStatus.ACCEPTED and asset.accepted_at is not None
    assert "In use" in hugo.get("/equipment").get_data(as_text=True)

    response = hugo.submit(f"/equipment/assets/{asset.id}/return", {"version": asset.version})
    assert response.status_code == 303
    db.expire_all()
    assert asset.status == AssetStatus.RETURN_REQUESTED
    told = db.scalar(select(Notice).where(Notice.user_id == office["coordinator"].id))
    assert told is not None and "Hugo Holder wants to return Laptop 14 (IT-0042)" in told.message
    assert "Return requested" in hugo.get("/equipment").get_data(as_text=True)

    response = cora.submit(f"/assets/{asset.id}/returned", {"version": asset.version})
    assert response.status_code == 303
    db.expire_all()
    assert asset.status == AssetStatus.IN_STOCK and asset.holder_id is None
    assert "IT-0042" not in hugo.get("/equipment").get_data(as_text=True)

    page = cora.get(f"/assets/{asset.id}").get_data(as_text=True)
    for label in (
        "Received into stock",
        "Handed over",
        "Accepted by the holder",
        "Return requested",
        "Returned",
    ):
        assert label in page
    assert "by Cora Coordinator" in page and "by Hugo Holder" in page and "With charger" in page
    assert actions(db, asset) == [
        "received",
        "assigned",
        "accepted",
        "return_requested",
        "returned",
    ]


def test_lost_and_retired_assets_leave_their_holder_and_stay_in_the_history(app, db, office):
    asset = handed_over(db, office)
    cora = browser(app, COORDINATOR)
    response = cora.submit(f"/assets/{asset.id}/lost", {"version": asset.version, "note": "Train"})
    assert response.status_code == 303
    db.expire_all()
    assert asset.status == AssetStatus.LOST and asset.holder_id is None
    response = cora.submit(f"/assets/{asset.id}/retire", {"version": asset.version})
    assert response.status_code == 303
    db.expire_all()
    assert asset.status == AssetStatus.RETIRED
    page = cora.get(f"/assets/{asset.id}").get_data(as_text=True)
    assert "Marked lost" in page and "Hugo Holder" in page and "Train" in page and "Retired" in page
    # Retired is final: nothing more can happen to it.
    response = cora.submit(f"/assets/{asset.id}/returned", {"version": asset.version})
    assert response.status_code == 422
    assert "nothing to return" in response.get_data(as_text=True)


def test_an_asset_someone_holds_cannot_be_retired_without_coming_back_first(app, db, office):
    asset = handed_over(db, office)
    cora = browser(app, COORDINATOR)
    response = cora.submit(f"/assets/{asset.id}/retire", {"version": asset.version})
    assert response.status_code == 422
    assert "Hugo Holder still has it. Mark it returned first" in response.get_data(as_text=True)
    db.expire_all()
    assert asset.status == AssetStatus.ASSIGNED


def test_an_asset_with_someone_cannot_be_handed_to_a_second_person(app, db, office):
    asset = handed_over(db, office)
    cora = browser(app, COORDINATOR)
    response = cora.submit(
        f"/assets/{asset.id}/hand-over", {"email": OTHER, "version": asset.version}
    )
    assert response.status_code == 422
    assert "Hugo Holder has it" in response.get_data(as_text=True)
    db.expire_all()
    assert asset.holder_id == office["holder"].id


# ---------------------------------------------------------------------------------------------
# Finding assets


def test_the_register_searches_by_tag_serial_holder_status_and_item(app, db, office):
    handed_over(db, office, "IT-0001")
    add(db, office, "IT-0002", serial_number="ZX-99")
    other_item = sd.item(db, "Monitor 27", tracked=True)
    db.commit()
    assets.add_asset(
        db,
        Actor.system("tests"),
        office["coordinator"],
        office["berlin"],
        assets.NewAsset(item_id=other_item.id, asset_tag="MON-1"),
        now=utcnow(),
    )
    db.commit()
    cora = browser(app, COORDINATOR)

    def tags(query: str, htmx: bool = False) -> set[str]:
        headers = {"HX-Request": "true"} if htmx else {}
        page = cora.get(f"/assets?{query}", headers=headers).get_data(as_text=True)
        return {t for t in ("IT-0001", "IT-0002", "MON-1") if t in page}

    assert tags("") == {"IT-0001", "IT-0002", "MON-1"}
    assert tags("q=it-0002") == {"IT-0002"}
    assert tags("q=zx-9") == {"IT-0002"}
    assert tags("q=hugo") == {"IT-0001"}
    assert tags("q=hugo@example") == {"IT-0001"}
    assert tags("status=held") == {"IT-0001"}
    assert tags("status=in_stock") == {"IT-0002", "MON-1"}
    assert tags(f"item={other_item.id}") == {"MON-1"}
    assert tags("q=%25") == set()  # a wildcard typed in the box is a literal character
    fragment = cora.get("/assets?q=MON", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="asset-results"') and "<html" not in fragment
    assert "MON-1" in fragment


def test_a_coordinator_sees_only_their_sites_assets(app, db, office):
    add(db, office, "IT-0001")
    nate = browser(app, NY_COORDINATOR)
    assert "IT-0001" not in nate.get("/assets").get_data(as_text=True)
    assert "IT-0001" not in nate.get("/assets?q=IT").get_data(as_text=True)


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("values", "field_message"),
    [
        ({"asset_tag": ""}, "Give it an asset tag"),
        ({"asset_tag": "X" * 41}, "under 40 characters"),
        ({"asset_tag": "<b>IT</b>"}, "no &lt; or &gt;"),
        ({"asset_tag": "it-0001"}, "IT-0001 is already in the register"),
        ({"item_id": 0}, "Choose an item from the catalog"),
        ({"item": "pens"}, "Pens is a consumable"),
        ({"item_id": 999999}, "Choose an item from the catalog"),
        ({"serial_number": "S" * 81}, "under 80 characters"),
    ],
)
def test_bad_assets_are_refused_beside_the_field(app, db, office, values, field_message):
    add(db, office, "IT-0001")
    cora = browser(app, COORDINATOR)
    data: dict[str, Any] = {
        "site_id": office["berlin"].id,
        "item_id": office["laptop"].id,
        "asset_tag": "IT-0099",
    }
    values = dict(values)
    if values.pop("item", None) == "pens":
        data["item_id"] = office["pens"].id
    data.update(values)
    response = cora.submit("/assets/new", data)
    assert response.status_code == 422
    assert field_message in response.get_data(as_text=True)
    assert db.scalar(select(Asset).where(Asset.asset_tag == "IT-0099")) is None
    assert len(list(db.scalars(select(Asset)))) == 1


def test_a_site_one_does_not_coordinate_is_refused(app, db, office):
    nate = browser(app, NY_COORDINATOR)
    response = nate.submit(
        "/assets/new",
        {"site_id": office["berlin"].id, "item_id": office["laptop"].id, "asset_tag": "IT-7"},
    )
    assert response.status_code == 422  # Berlin is not one of Nate's choices
    assert db.scalar(select(Asset)) is None


def test_handing_over_to_an_unknown_or_inactive_person_is_explained(app, db, office):
    asset = add(db, office)
    factories.user(db, name="Gone Person", email="gone@example.com", active=False)
    db.commit()
    cora = browser(app, COORDINATOR)
    for email, message in (
        ("nobody@example.com", "Nobody with an active account"),
        ("gone@example.com", "Nobody with an active account"),
        ("", "Enter the e-mail"),
    ):
        response = cora.submit(
            f"/assets/{asset.id}/hand-over", {"email": email, "version": asset.version}
        )
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
    db.expire_all()
    assert asset.status == AssetStatus.IN_STOCK


def test_html_in_a_note_is_shown_as_text(app, db, office):
    asset = add(db, office, note="<script>alert(1)</script>")
    page = browser(app, COORDINATOR).get(f"/assets/{asset.id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# ---------------------------------------------------------------------------------------------
# Stale pages and races


def test_a_stale_page_answers_changed_by_someone_else(app, db, office):
    asset = add(db, office)
    stale_version = asset.version
    cora = browser(app, COORDINATOR)
    assert (
        cora.submit(
            f"/assets/{asset.id}/hand-over", {"email": HOLDER, "version": stale_version}
        ).status_code
        == 303
    )
    # A second tab still shows the asset in stock and tries to hand it to someone else.
    response = cora.submit(
        f"/assets/{asset.id}/hand-over", {"email": OTHER, "version": stale_version}
    )
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Changed by someone else" in page and "Hugo Holder" in page  # the fresh state
    for action in ("returned", "lost", "retire"):
        response = cora.submit(f"/assets/{asset.id}/{action}", {"version": stale_version})
        assert response.status_code == 409, action
    db.expire_all()
    assert asset.holder_id == office["holder"].id and asset.status == AssetStatus.ASSIGNED


def test_a_stale_accept_from_an_old_tab_is_refused(app, db, office):
    asset = handed_over(db, office)
    old = asset.version
    assets.mark_returned(db, Actor.system("tests"), asset, office["coordinator"], utcnow())
    assets.hand_over(
        db, Actor.system("tests"), asset, office["holder"], office["coordinator"], utcnow()
    )
    db.commit()
    hugo = browser(app, HOLDER)
    response = hugo.submit(f"/equipment/assets/{asset.id}/accept", {"version": old})
    assert response.status_code == 303
    assert "Changed by someone else" in hugo.get("/equipment").get_data(as_text=True)
    db.expire_all()
    assert asset.status == AssetStatus.ASSIGNED


def test_the_version_column_catches_a_concurrent_change(db, office, session_factory):
    asset = add(db, office)
    other = session_factory()
    try:
        same = other.get(Asset, asset.id)
        assert same is not None
        assets.mark_lost(other, Actor.system("tests"), same, office["coordinator"], utcnow())
        other.commit()
    finally:
        other.close()
    # This session still believes the asset is in stock at the old version.
    with pytest.raises(assets.StaleAsset):
        assets.hand_over(
            db, Actor.system("tests"), asset, office["holder"], office["coordinator"], utcnow()
        )


# ---------------------------------------------------------------------------------------------
# Permissions: every id-bearing route, as the wrong person


def test_other_people_get_404_on_every_asset_route(app, db, office):
    asset = handed_over(db, office)
    version = asset.version
    otto = browser(app, OTHER)
    for path in (f"/equipment/assets/{asset.id}/accept", f"/equipment/assets/{asset.id}/return"):
        assert otto.submit(path, {"version": version}).status_code == 404
    assert otto.get("/assets").status_code == 403  # not a coordinator anywhere
    nate = browser(app, NY_COORDINATOR)
    assert nate.get(f"/assets/{asset.id}").status_code == 404
    for action in ("hand-over", "returned", "lost", "retire"):
        response = nate.submit(f"/assets/{asset.id}/{action}", {"version": version, "email": OTHER})
        assert response.status_code == 404, action
    for path in (f"/equipment/assets/{asset.id}/accept", f"/equipment/assets/{asset.id}/return"):
        assert nate.submit(path, {"version": version}).status_code == 404
    cora = browser(app, COORDINATOR)
    assert cora.get("/assets/999999").status_code == 404
    assert cora.submit("/assets/999999/returned", {}).status_code == 404
    db.expire_all()
    assert asset.status == AssetStatus.ASSIGNED and asset.version == version
    assert actions(db, asset) == ["received", "assigned"]


def test_the_service_refuses_the_wrong_people_too(db, office):
    asset = handed_over(db, office)
    system = Actor.system("tests")
    with pytest.raises(NotFound):
        assets.accept(db, system, asset, office["other"], utcnow())
    with pytest.raises(NotFound):
        assets.request_return(db, system, asset, office["coordinator"], utcnow())
    with pytest.raises(NotFound):
        assets.mark_returned(db, system, asset, office["ny_coordinator"], utcnow())
    with pytest.raises(NotFound):
        assets.hand_over(db, system, asset, office["other"], by=office["holder"], now=utcnow())
    # Accepting twice is harmless; accepting what was never handed over is explained.
    assets.accept(db, system, asset, office["holder"], utcnow())
    assets.accept(db, system, asset, office["holder"], utcnow())
    assert actions(db, asset).count("accepted") == 1
    stock = add(db, office, "IT-0002")
    with pytest.raises(RuleViolation):
        assets.mark_return_requested(db, system, stock, office["coordinator"], utcnow())


def test_a_tag_registered_by_a_colleague_a_moment_ago_is_named_and_nothing_breaks(
    db, office, session_factory
):
    """The duplicate check passed, then a colleague's same tag committed before this insert: the
    form says so and the request's session still works (before: the pre-flush ran outside the
    savepoint and the next statement raised, a 500)."""
    other = session_factory()
    raced = []

    def colleague_commits_first(session, _context, _instances):
        if not raced and any(isinstance(o, Asset) for o in session.new):
            raced.append(True)
            assets.add_asset(
                other,
                Actor.system("tests"),
                other.get(User, office["coordinator"].id),
                other.get(Site, office["berlin"].id),
                assets.NewAsset(item_id=office["laptop"].id, asset_tag="IT-0042"),
                now=utcnow(),
            )
            other.commit()

    event.listen(db, "before_flush", colleague_commits_first)
    try:
        with pytest.raises(RuleViolation) as refused:
            assets.add_asset(
                db,
                Actor.system("tests"),
                office["coordinator"],
                office["berlin"],
                assets.NewAsset(item_id=office["laptop"].id, asset_tag="it-0042"),
                now=utcnow(),
            )
    finally:
        event.remove(db, "before_flush", colleague_commits_first)
        other.close()
    assert refused.value.errors == {"asset_tag": "IT-0042 was just added by someone else."}
    db.commit()  # still usable
    assert db.scalar(select(func.count(Asset.id)).where(Asset.asset_tag == "IT-0042")) == 1
