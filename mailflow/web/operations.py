"""For machines, not people: ``/healthz`` for load balancers and supervisors, ``/metrics`` for Prometheus.

Neither needs a login. /healthz says only whether the desk runs and reaches its database; /metrics
holds counts only, and ``metrics_allow`` / ``metrics_token`` can restrict who reads them.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from flask import Blueprint, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from mailflow.operations.metrics import registry_for
from mailflow.web.context import desk

log = logging.getLogger(__name__)

bp = Blueprint("operations", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    try:
        with desk().archive() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.error("health check: database unreachable (%s)", type(exc).__name__)
        return jsonify(status="fail", database="unreachable"), 503
    return jsonify(status="ok", database="ok"), 200


@bp.get("/metrics")
def metrics() -> Response:
    settings = desk().settings
    refusal = _refusal(settings.metrics_networks, settings.metrics_token)
    if refusal is not None:
        return refusal
    registry = registry_for(desk().archive, desk().app.clock)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def _refusal(networks: list, token: str | None) -> Response | None:
    """Every restriction configured must be met: the caller's address, and the bearer token."""
    if networks:
        try:
            address = ipaddress.ip_address(request.remote_addr or "")
        except ValueError:
            address = None
        if address is None or not any(address in network for network in networks):
            return Response("metrics are not served to this address\n", 403, mimetype="text/plain")
    if token:
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            return Response(
                "a bearer token is required\n", 401, {"WWW-Authenticate": "Bearer"}, mimetype="text/plain"
            )
    return None
