"""The desk under attack: forged forms (CSRF), planted and stolen session cookies, cookie flags, and
password guessing from one address or against one account."""

from __future__ import annotations

from sqlalchemy import select

from mailflow.storage.desk_models import User
from mailflow.storage.models import Case, Event, Message
from mailflow.web import create_app
from tests.web.conftest import PASSWORD, csrf_token, login
from tests.web.test_route_matrix import build_url, client_for, matrix, routes, url_values  # noqa: F401

COOKIE = "mailflow_session"


def test_csrf_protection_is_on_in_the_tests_too(matrix):  # noqa: F811
    _, web = matrix
    assert web.config.get("WTF_CSRF_ENABLED", True) is True
    assert web.config.get("WTF_CSRF_CHECK_DEFAULT", True) is True


def test_every_post_route_refuses_a_form_without_its_sessions_token(matrix):  # noqa: F811
    world, web = matrix
    values = url_values(world)
    posts = [(rule, method) for rule, method in routes(web) if method not in {"GET"}]
    assert len(posts) >= 15
    other_token = client_for(web, "staff")[1]  # valid, but another session's
    refused = 0
    for role in ("anonymous", "staff", "auditor", "admin"):
        client, _ = client_for(web, role)
        for rule, method in posts:
            url = build_url(rule, values)
            for data in ({}, {"csrf_token": other_token}, {"csrf_token": "forged"}):
                form = {"username": "sam", "password": PASSWORD, "outcome": "spam", "note": "x", **data}
                response = client.open(url, method=method, data=form)
                assert response.status_code == 400, (role, method, url, data)
                assert "The form expired. Reload the page." in response.text
                refused += 1
    print(f"\nCSRF: {len(posts)} POST routes × 4 roles × 3 forged forms = {refused} refused")
    with world.app.sessions() as session:
        assert session.get_one(Message, world.ids["renewal"]).status == "triage"
        assert not session.scalar(select(User).where(User.username == "sara")).disabled
        assert session.scalar(select(Case.status).where(Case.reference == values["reference"])) != "closed"
        assert not session.scalars(select(Event).where(Event.kind.in_(["case_note", "user_disabled"]))).all()


def _session_cookie(response) -> str:
    (cookie,) = [v for k, v in response.headers.items() if k == "Set-Cookie" and v.startswith(COOKIE)]
    return cookie


def test_a_cookie_planted_before_login_never_becomes_a_logged_in_session(web):
    victim = web.test_client()
    victim.get("/login")
    planted = victim.get_cookie(COOKIE).value  # what an attacker could have set in the victim's browser
    assert login(victim, "sam").status_code == 302
    assert victim.get_cookie(COOKIE).value != planted  # a new session at login
    assert victim.get("/triage").status_code == 200

    attacker = web.test_client()
    attacker.set_cookie(COOKIE, planted)
    response = attacker.get("/triage")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_a_session_cookie_copied_before_logout_is_dead_after_it(web):
    person = web.test_client()
    assert login(person, "sam").status_code == 302
    stolen = person.get_cookie(COOKIE).value
    thief = web.test_client()
    thief.set_cookie(COOKIE, stolen)
    assert thief.get("/triage").status_code == 200  # a stolen live session works, until...
    assert (
        person.post("/logout", data={"csrf_token": csrf_token(person.get("/archive").text)}).status_code
        == 302
    )
    response = thief.get("/triage")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert login(person, "sam").status_code == 302  # logging in again works


def test_session_cookies_are_httponly_and_samesite_lax_before_and_after_login(web):
    client = web.test_client()
    anonymous = client.get("/login")  # the session that carries the login form's CSRF token
    token = csrf_token(anonymous.text)
    logged_in = client.post("/login", data={"username": "sam", "password": PASSWORD, "csrf_token": token})
    for cookie in (_session_cookie(anonymous), _session_cookie(logged_in)):
        flags = [part.strip().lower() for part in cookie.split(";")]
        assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags, cookie


def from_address(web, address: str):
    client = web.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_guessing_from_one_address_is_throttled_for_every_account_but_not_other_addresses(web, world):
    limit = world.settings.login_max_failures_per_address
    per_account = world.settings.login_max_failures
    guesser = from_address(web, "203.0.113.7")
    # Many names, few tries each: no account reaches its own limit, the address reaches its.
    names = [f"user{n}" for n in range(limit)] + ["sara"]
    tries = 0
    while tries < limit:
        name = names[tries % len(names)]
        assert login(guesser, name, "wrong password!").status_code == 401, tries
        tries += 1
    assert limit // len(names) < per_account
    assert login(guesser, "sara").status_code == 429  # even the right password, from there
    assert login(guesser, "ada").status_code == 429
    colleague = from_address(web, "198.51.100.20")
    assert login(colleague, "sara").status_code == 302
    world.clock.advance(seconds=world.settings.login_window_seconds + 1)
    assert login(guesser, "ada").status_code == 302


def test_guessing_one_account_from_many_addresses_locks_that_account_only(web, world):
    for n in range(world.settings.login_max_failures):
        client = from_address(web, f"192.0.2.{n + 1}")
        assert login(client, "sara", "wrong password!").status_code == 401
    fresh = from_address(web, "192.0.2.200")
    assert login(fresh, "sara").status_code == 429
    assert login(from_address(web, "192.0.2.201"), "sam").status_code == 302


def test_the_throttle_counts_in_the_database_so_every_desk_process_sees_it(world):
    """Two desk applications over one database (as two processes would be) share the count."""
    first = from_address(create_app(world.app, TESTING=True), "203.0.113.9")
    second = from_address(create_app(world.app, TESTING=True), "203.0.113.10")
    for n in range(world.settings.login_max_failures):
        client = first if n % 2 else second
        assert login(client, "sara", "wrong password!").status_code == 401
    assert login(first, "sara").status_code == 429 and login(second, "sara").status_code == 429


def test_what_a_resident_sent_is_downloaded_never_shown_and_runs_nothing_if_opened(matrix):  # noqa: F811
    world, web = matrix
    client, _ = client_for(web, "auditor")
    for url in (f"/archive/{world.ids['documents']}/attachments/0", f"/archive/{world.ids['hostile']}/eml"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Content-Disposition"].startswith("attachment;"), url
        assert response.headers["Content-Type"] in ("application/octet-stream", "message/rfc822"), url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response.headers["Content-Security-Policy"].split("; "), url
        assert response.headers["Cache-Control"] == "no-store", url


def test_the_per_address_limit_is_a_setting(tmp_path):
    from mailflow.web.accounts import Throttle
    from tests.web.conftest import desk_settings

    settings = desk_settings(tmp_path / "data", login_max_failures_per_address=3)
    assert Throttle.from_settings(settings).max_failures_per_address == 3
