"""Every URL of the desk, for each of anonymous, staff, auditor and admin: who gets what.

The table below declares the expected answer for every route and method. A route added to the desk
without a row here fails the test, and so does a row for a route that no longer exists: deny by
default is only checked when every route is checked. POSTs carry a valid CSRF token of the person's
own session (CSRF has its own tests), so a refusal here is the role's. Every answer also carries the
desk's security headers.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.routing import Rule

from mailflow.storage.models import Case, Message, Reply
from mailflow.web import create_app, leases
from mailflow.web.decisions import Part, decide_item
from tests.web import emails
from tests.web.conftest import World, build_world, csrf_token, desk_settings, login, standard_mails
from tests.web.test_archive import png_bytes

ROLES = ("anonymous", "staff", "auditor", "admin")
USERS = {"staff": "sam", "auditor": "audrey", "admin": "ada"}
LOGIN = "login"  # a redirect to the login page
# Methods Flask answers by itself for every route (HEAD as GET, OPTIONS with the allowed methods).
IMPLICIT = {"HEAD", "OPTIONS"}

PAGE_IMAGE = "/archive/<int:message_id>/attachments/<int:position>/page/<int:page>.png"

# (rule, method): expected answer for (anonymous, staff, auditor, admin). 302 is any other redirect.
TABLE: dict[tuple[str, str], tuple[int | str, int | str, int | str, int | str]] = {
    ("/static/<path:filename>", "GET"): (200, 200, 200, 200),
    # Counts only, for the monitoring; MAILFLOW_METRICS_ALLOW / _TOKEN restrict them (tested apart).
    ("/healthz", "GET"): (200, 200, 200, 200),
    ("/metrics", "GET"): (200, 200, 200, 200),
    ("/login", "GET"): (200, 302, 302, 302),  # logged in: to one's home page
    ("/login", "POST"): (200, 302, 302, 302),  # a form without name and password: shown again, or home
    ("/logout", "POST"): (302, 302, 302, 302),
    ("/language", "POST"): (302, 302, 302, 302),
    ("/", "GET"): (LOGIN, 200, 403, 200),
    ("/triage", "GET"): (LOGIN, 200, 403, 200),
    ("/triage/<int:message_id>", "GET"): (LOGIN, 200, 403, 200),
    ("/triage/<int:message_id>/preview", "GET"): (LOGIN, 200, 403, 200),
    ("/triage/<int:message_id>/decide", "POST"): (LOGIN, 400, 403, 400),  # an empty form
    ("/triage/<int:message_id>/undo", "POST"): (LOGIN, 302, 403, 302),
    ("/triage/<int:message_id>/release", "POST"): (LOGIN, 302, 403, 302),
    ("/archive", "GET"): (LOGIN, 200, 200, 200),
    ("/archive.csv", "GET"): (LOGIN, 200, 200, 200),
    ("/archive/<int:message_id>", "GET"): (LOGIN, 200, 200, 200),
    ("/archive/<int:message_id>/body", "GET"): (LOGIN, 200, 200, 200),
    ("/archive/<int:message_id>/eml", "GET"): (LOGIN, 200, 200, 200),
    ("/archive/<int:message_id>/replies/<int:reply_id>", "GET"): (LOGIN, 200, 200, 200),
    ("/archive/<int:message_id>/attachments/<int:position>", "GET"): (LOGIN, 200, 200, 200),
    (PAGE_IMAGE, "GET"): (LOGIN, 200, 200, 200),
    ("/cases/<reference>", "GET"): (LOGIN, 200, 200, 200),
    ("/cases/<reference>/notes", "POST"): (LOGIN, 302, 403, 302),
    ("/cases/<reference>/close", "POST"): (LOGIN, 302, 403, 302),
    ("/cases/<reference>/reopen", "POST"): (LOGIN, 302, 403, 302),
    # Legal holds: admins only; an empty form (no reason) is refused with a message on the case page.
    ("/cases/<reference>/hold", "POST"): (LOGIN, 403, 403, 302),
    ("/cases/<reference>/hold/lift", "POST"): (LOGIN, 403, 403, 302),
    ("/dashboard", "GET"): (LOGIN, 200, 200, 200),
    ("/audit", "GET"): (LOGIN, 403, 200, 200),  # the log is for those who check the desk
    ("/audit/verify", "GET"): (LOGIN, 403, 200, 200),
    ("/audit.csv", "GET"): (LOGIN, 403, 200, 200),
    # Who viewed an email, or a person's data: read-only, for those who check the desk. The person is
    # asked for by POST (no address in URLs), which an auditor may send: it changes nothing.
    ("/audit/emails/<int:message_id>/views", "GET"): (LOGIN, 403, 200, 200),
    ("/audit/person", "GET"): (LOGIN, 403, 200, 200),
    ("/audit/person", "POST"): (LOGIN, 403, 200, 200),  # an empty form: shown again
    ("/admin", "GET"): (LOGIN, 403, 403, 200),
    ("/admin", "POST"): (LOGIN, 403, 403, 200),  # an empty form: shown again with what is missing
    # A person's erasure request: admins only; the person by POST (never in a URL), an empty form shown again.
    ("/admin/erasure", "GET"): (LOGIN, 403, 403, 200),
    ("/admin/erasure", "POST"): (LOGIN, 403, 403, 200),
    ("/admin/accounts/<username>/disable", "POST"): (LOGIN, 403, 403, 302),
    ("/admin/accounts/<username>/enable", "POST"): (LOGIN, 403, 403, 302),
    ("/admin/accounts/<username>/unlock", "POST"): (LOGIN, 403, 403, 302),
    ("/admin/accounts/<username>/password", "POST"): (LOGIN, 403, 403, 302),
    ("/admin/accounts/<username>/role", "POST"): (LOGIN, 403, 403, 302),
}


def matrix_world(data_dir: Path) -> World:
    """The standard emails, one with an image (for the document routes), and a case with a reply."""
    mails = standard_mails()
    mails["documents"] = emails.email(
        sender="lina@example.org",
        subject="Verblijfskaart: foto",
        dmarc="fail",
        text="Goedendag, hierbij mijn foto voor de verblijfskaart.",
        attachments=[("foto.png", "image/png", png_bytes())],
    )
    world = build_world(desk_settings(data_dir), mails)
    second = world.ids["second"]
    leases.take(world.app.sessions, second, "sara", now=world.clock(), lease=timedelta(minutes=5))
    decide_item(world.app, second, "sara", [Part("return_report")])
    return world


def url_values(world: World) -> dict[str, object]:
    documents, second = world.ids["documents"], world.ids["second"]
    with world.app.sessions() as session:
        reference = session.get_one(Case, session.get_one(Message, second).case_id).reference
        reply_id = session.scalars(select(Reply.id).where(Reply.message_id == second)).first()
    return {
        "filename": "desk.css",
        # An email with a document for the document routes; the others take any email waiting.
        "message_id": world.ids["renewal"],
        "documents_id": documents,
        "position": 0,
        "page": 0,
        "reply_id": reply_id,
        "reply_message_id": second,
        "reference": reference,
        "username": "sara",  # an account none of the clients here uses
    }


def build_url(rule: Rule, values: dict[str, object]) -> str:
    chosen = dict(values)
    if "position" in rule.arguments:
        chosen["message_id"] = values["documents_id"]
    if "reply_id" in rule.arguments:
        chosen["message_id"] = values["reply_message_id"]
    arguments = {name: chosen[name] for name in rule.arguments}
    return rule.build(arguments, append_unknown=False)[1] if arguments else rule.rule  # type: ignore[index]


def post_data(token: str) -> dict[str, str]:
    return {"csrf_token": token}


def client_for(web: Flask, role: str) -> tuple[FlaskClient, str]:
    """A client logged in as the role's user (none for anonymous) and the CSRF token of its session."""
    client = web.test_client()
    if role != "anonymous":
        assert login(client, USERS[role]).status_code == 302
    page = client.get("/login" if role == "anonymous" else "/archive")
    return client, csrf_token(page.text)


def routes(web: Flask) -> list[tuple[Rule, str]]:
    return sorted(
        ((rule, method) for rule in web.url_map.iter_rules() for method in rule.methods - IMPLICIT),
        key=lambda pair: (pair[0].rule, pair[1]),
    )


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    world = matrix_world(tmp_path_factory.mktemp("matrix") / "data")
    try:
        yield world, create_app(world.app, TESTING=True)
    finally:
        world.app.close()


def test_every_route_has_a_row_and_every_row_a_route(matrix):
    _, web = matrix
    present = {(rule.rule, method) for rule, method in routes(web)}
    assert sorted(present - TABLE.keys()) == [], "routes without a row in TABLE: declare who may use them"
    assert sorted(TABLE.keys() - present) == [], "rows in TABLE for routes that no longer exist"


def matches(response, expected: int | str) -> bool:
    # Refused for want of a login: sent to the login page, to come back after it.
    refused = response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    if expected == LOGIN:
        return refused
    if expected == 302:
        return response.status_code == 302 and not refused
    return response.status_code == expected


def assert_security_headers(response, url: str) -> None:
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in csp or "default-src 'none'" in csp, url
    assert "object-src 'none'" in csp or "default-src 'none'" in csp, url
    assert "frame-ancestors" in csp and "base-uri 'none'" in csp, url
    assert headers.get("X-Content-Type-Options") == "nosniff", url
    # Never beyond the desk: same-origin (the CSRF check over HTTPS needs a Referer) or none at all.
    assert headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), url
    if not url.startswith("/static/"):
        assert "no-store" in headers.get("Cache-Control", ""), url


def test_each_role_gets_what_the_table_says_on_every_route(matrix):
    world, web = matrix
    values = url_values(world)
    checked, wrong = 0, []
    for index, role in enumerate(ROLES):
        client, token = client_for(web, role)
        # Reading first, then the changes (an admin's changes to "sara" are undone by the next rows).
        for rule, method in sorted(routes(web), key=lambda pair: (pair[1] != "GET", pair[0].rule, pair[1])):
            if rule.endpoint == "auth.logout":
                continue  # last, below: it ends the session the other rows need
            url = build_url(rule, values)
            response = client.open(url, method=method, data=post_data(token) if method != "GET" else None)
            expected = TABLE[(rule.rule, method)][index]
            checked += 1
            if not matches(response, expected):
                wrong.append(
                    (role, method, url, expected, response.status_code, response.headers.get("Location"))
                )
            assert_security_headers(response, url)
        logout = client.post("/logout", data=post_data(token))
        checked += 1
        if not matches(logout, TABLE[("/logout", "POST")][index]):
            wrong.append((role, "POST", "/logout", 302, logout.status_code, None))
    print(f"\nroute matrix: {len(TABLE)} routes × {len(ROLES)} roles = {checked} answers checked")
    assert checked == len(TABLE) * len(ROLES)
    assert wrong == [], "\n".join(map(str, wrong))
