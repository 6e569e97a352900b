"""Fixtures of the fault tests: brokers of their own, and the figures they measure.

Each fault test that runs a worker or restarts a broker gets a broker of its own, so
that nothing it does (a worker's consumer group, a broker outage) reaches other tests.
The figures a test measures (duplicates after kills, restart times) are printed at the
end of the run, in the terminal summary, and recorded as junit properties.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from databus.settings import Settings
from tests.integration.workers import fresh_bus

_FIGURES = pytest.StashKey[list[str]]()

Note = Callable[[str, object], None]


@pytest.fixture(scope="session")
def fault_bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A broker for the fault tests that need no restart of it (corpus, poison)."""
    with fresh_bus(tmp_path_factory.mktemp("fault-bus"), Settings().cache_dir) as settings:
        yield settings


@pytest.fixture
def figures(request: pytest.FixtureRequest, record_property: Callable[[str, object], None]) -> Note:
    """``note(name, value)``: a measured figure, shown in the terminal summary."""
    test = request.node.name

    def note(name: str, value: object) -> None:
        record_property(name, value)
        request.config.stash.setdefault(_FIGURES, []).append(f"{test}: {name} = {value}")

    return note


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lines = config.stash.get(_FIGURES, [])
    if lines:
        terminalreporter.section("fault test figures")
        for line in lines:
            terminalreporter.write_line(line)
