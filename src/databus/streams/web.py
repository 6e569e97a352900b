"""The worker's web port: what an operator needs, and nothing about any person.

Faust's web server would serve its built-in pages too: ``/table/<table>/<key>/`` (a
person's state by ``person_ref``), ``/router/``, ``/graph/``, the statistics page. None
of them is served here: :class:`OperatorWeb` mounts no built-in blueprint, and the only
routes are

* ``/metrics`` — Prometheus text (ours and Faust's sensor);
* ``/livez`` — 200 while the worker's event loop answers;
* ``/readyz`` — 200 once table recovery has completed and no rebalance is under way,
  503 otherwise (with the reason).

The server listens on 127.0.0.1 unless the operator passes ``--web-host``. Asking about
a person is the claims API's job (authenticated, granted, audited), never this port's.
"""

from __future__ import annotations

from typing import Any

from aiohttp.web import Response
from faust.web import drivers as web_drivers
from prometheus_client import REGISTRY, generate_latest

from databus.metrics import CONTENT_TYPE, faust_monitor

#: The routes the worker serves; a test checks that nothing else answers.
ROUTES = ("/metrics", "/livez", "/readyz")


def operator_web(app: Any) -> Any:
    """The web server of ``app`` without any of Faust's built-in pages."""
    driver = web_drivers.by_url(app.conf.web)

    class OperatorWeb(driver):  # type: ignore[misc, valid-type]
        default_blueprints = ()
        production_blueprints = ()
        debug_blueprints = ()
        optional_blueprints = ()

    return OperatorWeb(app)


def readiness(app: Any) -> str | None:
    """Why the worker is not ready to decide, or None when it is."""
    if not app.tables.recovery.completed.is_set():
        return "recovering its tables from the changelog"
    if app.rebalancing:
        return "rebalancing"
    return None


def add_operator_routes(app: Any) -> None:
    """``/metrics``, ``/livez`` and ``/readyz`` on ``app``'s web server."""
    faust_monitor(app)

    async def metrics_page(self: Any, request: Any) -> Any:
        return Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE})

    async def live(self: Any, request: Any) -> Any:
        return Response(text="ok\n")

    async def ready(self: Any, request: Any) -> Any:
        reason = readiness(app)
        if reason is None:
            return Response(text="ready\n")
        return Response(status=503, text=f"not ready: {reason}\n")

    app.page("/metrics")(metrics_page)
    app.page("/livez")(live)
    app.page("/readyz")(ready)
