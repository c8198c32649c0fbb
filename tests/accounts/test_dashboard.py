"""The console's home page and layout."""

import pytest

from breakglass.accounts import roles
from breakglass.accounts.services import backup_codes_generate
from devkit.factories import user_make


@pytest.fixture
def rita(db):
    return user_make("rita", role_names=(roles.RESPONDER,), first_name="Rita")


def test_the_home_page_links_the_areas_she_may_open_and_names_the_roles(rita, as_user):
    page = as_user(rita).get("/").content.decode()
    for href in ('href="/access/"', 'href="/drills/"', 'href="/comms/"'):
        assert href in page
    assert 'href="/audit/"' not in page  # a responder does not hold audit.view_auditevent
    assert "Signed in as <strong>Rita</strong>: Responder" in page


def test_the_home_page_warns_when_backup_codes_run_low(rita, as_user):
    assert "You have no backup codes" in as_user(rita).get("/").content.decode()
    backup_codes_generate(user=rita)
    assert "alert warn" not in as_user(rita).get("/").content.decode()
    rita.staticdevice_set.get().token_set.exclude(
        pk=rita.staticdevice_set.get().token_set.first().pk
    ).delete()
    assert "You have 1 backup code left" in as_user(rita).get("/").content.decode()


def test_the_admin_link_is_only_for_staff(rita, as_user):
    assert 'href="/admin/"' not in as_user(rita).get("/").content.decode()
    ada = user_make("ada", role_names=(roles.ADMINISTRATOR,), is_staff=True)
    assert 'href="/admin/"' in as_user(ada).get("/").content.decode()


def test_the_layout_loads_only_the_apps_own_stylesheet_and_no_script(rita, as_user):
    page = as_user(rita).get("/").content.decode()
    assert '<link rel="stylesheet" href="/static/breakglass/console.css">' in page
    assert "<script" not in page
    assert "style=" not in page
