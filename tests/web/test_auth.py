"""Accounts, sessions, CSRF, throttling, and the auditor who can change nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from mailflow.storage.desk_models import User
from mailflow.storage.models import Event, Message
from mailflow.web import create_app
from mailflow.web.context import EXTENSION
from tests.web.conftest import PASSWORD, csrf_token, login


def test_pages_need_a_login(web):
    client = web.test_client()
    for url in ("/triage", "/archive", "/archive/1", "/dashboard", "/audit", "/admin"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url


def test_wrong_password_is_refused_and_right_one_accepted(web):
    client = web.test_client()
    assert login(client, "sam", "not the password").status_code == 401
    assert login(client, "nobody", PASSWORD).status_code == 401
    response = login(client, "sam")
    assert response.status_code == 302 and response.headers["Location"].endswith("/triage")


def test_login_is_throttled_after_repeated_failures(web, world):
    client = web.test_client()
    for _ in range(world.settings.login_max_failures):
        assert login(client, "sara", "wrong password!").status_code == 401
    # Now even the right password is refused until the window has passed.
    assert login(client, "sara").status_code == 429
    world.clock.advance(seconds=world.settings.login_window_seconds + 1)
    assert login(client, "sara").status_code == 302


def test_forms_without_the_csrf_token_are_refused(as_user, world):
    client = as_user("sam")
    anonymous = create_app(world.app, TESTING=True).test_client()
    assert anonymous.post("/login", data={"username": "sam", "password": PASSWORD}).status_code == 400
    message_id = world.ids["renewal"]
    client.get(f"/triage/{message_id}")
    response = client.post(f"/triage/{message_id}/decide", data={"outcome": "spam"})
    assert response.status_code == 400
    with world.app.sessions() as session:
        assert session.get_one(Message, message_id).status == "triage"


def test_session_cookie_is_secure_httponly_samesite_and_expires(world):
    secure = create_app(
        world.app.__class__(world.settings.model_copy(update={"web_secure_cookies": "always"}))
    )
    client = secure.test_client()
    token = csrf_token(client.get("/login").text)
    response = client.post("/login", data={"username": "sam", "password": PASSWORD, "csrf_token": token})
    cookie = next(v for k, v in response.headers.items() if k == "Set-Cookie" and "mailflow_session" in v)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert re.search(r"Expires=", cookie)


def auto_cookies(world, **settings):
    changed = world.settings.model_copy(update={"web_secure_cookies": "auto", **settings})
    return create_app(world.app.__class__(changed)).test_client()


def session_cookie(response) -> str:
    return next(v for k, v in response.headers.items() if k == "Set-Cookie" and "mailflow_session" in v)


def test_auto_cookies_are_secure_over_https_only_and_hsts_goes_with_them(world):
    plain = auto_cookies(world).get("/login")
    assert "Secure" not in session_cookie(plain) and "Strict-Transport-Security" not in plain.headers
    tls = auto_cookies(world).get("/login", base_url="https://localhost")
    assert "Secure" in session_cookie(tls) and tls.headers["Strict-Transport-Security"] == "max-age=31536000"
    quiet = auto_cookies(world, web_hsts_seconds=0).get("/login", base_url="https://localhost")
    assert "Strict-Transport-Security" not in quiet.headers


def test_never_keeps_cookies_plain_even_over_https(world):
    client = auto_cookies(world, web_secure_cookies="never")
    assert "Secure" not in session_cookie(client.get("/login", base_url="https://localhost"))


def test_over_https_a_login_needs_a_same_origin_referer_which_the_pages_let_browsers_send(world):
    client = auto_cookies(world)
    page = client.get("/login", base_url="https://localhost")
    # no-referrer would make browsers send none, and flask-wtf refuses a form over HTTPS without one.
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert '<meta name="referrer" content="same-origin">' in page.text  # a meta tag would win over the header
    form = {"username": "sam", "password": PASSWORD, "csrf_token": csrf_token(page.text)}
    assert client.post("/login", data=form, base_url="https://localhost").status_code == 400
    headers = {"Referer": "https://localhost/login"}
    response = client.post("/login", data=form, base_url="https://localhost", headers=headers)
    assert response.status_code == 302


def test_a_session_ends_after_its_lifetime(as_user, web):
    client = as_user("sam")
    assert client.get("/triage").status_code == 200
    with client.session_transaction() as session:
        session["login_at"] = (
            datetime.now(UTC).timestamp() - web.extensions[EXTENSION].settings.session_lifetime - 5
        )
    response = client.get("/triage")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_logout_ends_the_session(as_user):
    client = as_user("sam")
    page = client.get("/archive").text
    assert client.post("/logout", data={"csrf_token": csrf_token(page)}).status_code == 302
    assert client.get("/archive").status_code == 302


def test_a_password_change_ends_older_sessions(as_user, world):
    from mailflow.web.accounts import set_password

    client = as_user("sam")
    with world.app.sessions.begin() as session:
        set_password(session, "sam", "a brand new password", actor="ada", now=world.clock())
    assert client.get("/archive").status_code == 302


def state_changing_rules(web):
    return [
        rule
        for rule in web.url_map.iter_rules()
        if rule.methods
        and rule.methods - {"GET", "HEAD", "OPTIONS"}
        # Logging in and out, choosing one's own desk language and looking a person up (a POST only to
        # keep the address out of URLs) change no record.
        and rule.endpoint not in {"auth.login", "auth.logout", "auth.language", "who_viewed.person"}
    ]


def test_every_state_changing_route_refuses_an_auditor(as_user, web, world):
    client = as_user("audrey")
    token = csrf_token(client.get("/archive").text)
    rules = state_changing_rules(web)
    assert {r.endpoint for r in rules} >= {
        "triage.decide",
        "triage.release",
        "admin.index",
        "accounts_admin.disable",
        "accounts_admin.password",
    }
    message_id = world.ids["renewal"]
    for rule in rules:
        values = {"message_id": message_id, "username": "sam", "reference": "MIG-2026-000001"}
        url = rule.build(values, append_unknown=False)[1] if rule.arguments else rule.rule
        for method in sorted(rule.methods - {"GET", "HEAD", "OPTIONS"}):
            data = {
                "csrf_token": token,
                "outcome": "spam",
                "username": "x1",
                "role": "admin",
                "password": PASSWORD * 2,
            }
            response = client.open(url, method=method, data=data)
            assert response.status_code == 403, (method, url)
    with world.app.sessions() as session:
        assert session.scalar(select(User).where(User.username == "x1")) is None
        assert not session.scalars(select(Event).where(Event.kind == "staff_decided")).all()
        assert not session.scalars(
            select(Event).where(Event.actor == "audrey", Event.kind.like("user_%"))
        ).all()
        assert not session.scalar(select(User).where(User.username == "sam")).disabled


def test_the_auditor_sees_no_way_to_change_anything(as_user, world):
    client = as_user("audrey")
    for url in (
        "/triage",
        f"/triage/{world.ids['renewal']}",
        f"/triage/{world.ids['renewal']}/preview",
        "/admin",
    ):
        assert client.get(url).status_code == 403, url
    for url in ("/archive", f"/archive/{world.ids['renewal']}", "/dashboard", "/audit"):
        page = client.get(url)
        assert page.status_code == 200, url
        forms = re.findall(r'<form[^>]*method="post"[^>]*action="([^"]*)"', page.text)
        assert forms == ["/language", "/logout"], (url, forms)  # own language only
        assert 'href="/triage"' not in page.text


def test_the_archive_reads_through_a_connection_that_cannot_write(web):
    archive = web.extensions[EXTENSION].archive
    with (
        archive() as session,
        pytest.raises(OperationalError, match=r"readonly|read-only|query_only|attempt to write"),
    ):
        session.execute(text("DELETE FROM users"))


def test_an_admin_adds_an_account_and_staff_cannot(as_user, web):
    admin = as_user("ada")
    page = admin.get("/admin")
    assert page.status_code == 200 and "Models" in page.text
    form = {
        "csrf_token": csrf_token(page.text),
        "username": "nina",
        "role": "staff",
        "password": "a long password",
    }
    assert admin.post("/admin", data=form).status_code == 302
    assert login(web.test_client(), "nina", "a long password").status_code == 302
    staff = as_user("sam")
    assert staff.get("/admin").status_code == 403
    token = csrf_token(staff.get("/archive").text)
    assert staff.post("/admin", data={**form, "csrf_token": token, "username": "nico"}).status_code == 403


def test_model_manifests_are_read_and_flattened(tmp_path):
    from mailflow.web.admin import flat, model_manifests

    (tmp_path / "manifest.json").write_text('{"version": "2026-12-01", "held_out": {"accuracy": 0.91}}')
    (tmp_path / "broken.json").write_text("{not json")
    found = model_manifests(tmp_path)
    assert [m["file"] for m in found] == ["manifest.json"]
    assert flat(found[0]["data"]) == [("version", "2026-12-01"), ("held_out.accuracy", "0.91")]


def test_an_unlocked_account_logs_in_again_and_its_failures_stay_on_record(web, world):
    from mailflow.storage.desk_models import LoginAttempt
    from mailflow.web.accounts import unlock

    client = web.test_client()
    for _ in range(world.settings.login_max_failures):
        login(client, "sara", "wrong password!")
    assert login(client, "sara").status_code == 429
    with world.app.sessions.begin() as session:
        unlock(session, "sara", actor="ada", now=world.clock())
    world.clock.advance(seconds=1)
    assert login(client, "sara").status_code == 302
    with world.app.sessions() as session:
        failed = session.scalars(
            select(LoginAttempt).where(LoginAttempt.username == "sara", LoginAttempt.succeeded.is_(False))
        ).all()
    assert len(failed) == world.settings.login_max_failures


def test_a_disabled_account_is_logged_out_and_refused_until_enabled(as_user, web, world):
    from mailflow.web.accounts import set_disabled

    client = as_user("sam")
    assert client.get("/triage").status_code == 200
    with world.app.sessions.begin() as session:
        set_disabled(session, "sam", True, actor="ada", now=world.clock())
    assert client.get("/triage").status_code == 302  # the open session ended
    assert login(web.test_client(), "sam").status_code == 401
    with world.app.sessions.begin() as session:
        set_disabled(session, "sam", False, actor="ada", now=world.clock())
    assert login(web.test_client(), "sam").status_code == 302


def test_users_commands_list_disable_enable_and_unlock(world):
    from click.testing import CliRunner

    from mailflow.cli import main

    env = {"MAILFLOW_DATA_DIR": str(world.settings.data_dir), "MAILFLOW_SECRET_KEY": "k" * 32}

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, ["users", *args], env=env)
        assert result.exit_code == 0, result.output
        return result.output

    assert re.search(r"^sam\s+staff\s+active\s", run("list"), re.M)
    run("disable", "sam")
    assert re.search(r"^sam\s+staff\s+disabled\s", run("list"), re.M)
    run("enable", "sam")
    assert re.search(r"^sam\s+staff\s+active\s", run("list"), re.M)
    assert "sam unlocked" in run("unlock", "sam")
    unknown = CliRunner().invoke(main, ["users", "disable", "nobody"], env=env)
    assert unknown.exit_code != 0 and "no user 'nobody'" in unknown.output


@pytest.mark.parametrize(
    "target", ["//evil.example", "/\t/evil.example", "/\\evil.example", "https://evil.example", "/a\nb"]
)
def test_the_language_switch_never_leads_off_the_desk(web, target):
    client = web.test_client()
    token = csrf_token(client.get("/login").text)
    response = client.post("/language", data={"csrf_token": token, "language": "fr", "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"


def test_the_language_switch_returns_to_the_page_it_was_chosen_on(as_user):
    client = as_user("audrey")
    token = csrf_token(client.get("/archive").text)
    response = client.post("/language", data={"csrf_token": token, "language": "nl", "next": "/archive?q=x"})
    assert response.headers["Location"] == "/archive?q=x"
    assert '<html lang="nl">' in client.get("/archive").text


def test_every_error_page_is_the_desks_own(as_user):
    client = as_user("sam")
    method_not_allowed = client.get("/language")
    assert method_not_allowed.status_code == 405
    assert (
        "This address cannot be used this way." in method_not_allowed.text
        and 'class="top"' in method_not_allowed.text
    )
    too_large = client.post("/triage/1/decide", data={"reply_text": "x" * (1024 * 1024 + 1)})
    assert too_large.status_code == 413 and "What was sent is too large." in too_large.text
