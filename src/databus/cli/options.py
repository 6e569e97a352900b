"""Options several commands share."""

from __future__ import annotations

import click

from databus.metrics import DEFAULT_HOST

metrics_host_option = click.option(
    "--metrics-host",
    default=DEFAULT_HOST,
    show_default=True,
    metavar="ADDRESS",
    help="Address the metrics port listens on; 0.0.0.0 for every interface (a container).",
)
"""``--metrics-host``: loopback unless the operator says otherwise."""
