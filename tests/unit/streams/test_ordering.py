"""Time order across co-partitioned topics: every record waits for the other topics of
its partition (ticks and sources alike) until they are buffered or read to their end."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP

from databus.streams.ordering import PartitionOrder

CLOCK, VISITS, TAPS = "system.clock.v1", "health.hospital_visit.v1", "transport.transit_tap.v1"


def _records(topic: str, *stamps: int, first_offset: int = 0) -> list[Any]:
    return [
        SimpleNamespace(topic=topic, offset=first_offset + i, timestamp=ts, partition=0)
        for i, ts in enumerate(stamps)
    ]


def _order() -> PartitionOrder:
    return PartitionOrder([VISITS, TAPS, CLOCK], barriers=[CLOCK])


def _sources(partition: int) -> list[TP]:
    return [TP(VISITS, partition), TP(TAPS, partition)]


def _barriers(partition: int) -> list[TP]:
    return [TP(CLOCK, partition)]


def _seen(records: list[Any]) -> list[tuple[str, int]]:
    return [(r.topic, r.timestamp) for r in records]


def test_records_leave_in_time_order_and_wait_for_a_topic_not_read_to_its_end() -> None:
    order = _order()
    order.add(TP(CLOCK, 0), _records(CLOCK, 100, 200))
    order.add(TP(VISITS, 0), _records(VISITS, 50, 150, 250))
    # The taps of partition 0 have not been fetched to their end: a tap older than any
    # of these may still be on the broker, so nothing leaves (not even the visit at 50).
    released, spans = order.take(
        _sources, caught_up=lambda tp: tp != TP(TAPS, 0), barriers=_barriers
    )
    assert released == []
    assert spans == {}
    # The taps arrive, older than the tick: they go first, then the tick.
    order.add(TP(TAPS, 0), _records(TAPS, 90, 120))
    released, spans = order.take(_sources, caught_up=lambda tp: True, barriers=_barriers)
    assert _seen(released) == [
        (VISITS, 50), (TAPS, 90), (CLOCK, 100), (TAPS, 120), (VISITS, 150), (CLOCK, 200),
        (VISITS, 250),
    ]  # fmt: skip
    assert spans == {TP(TAPS, 0): (0, 1), TP(CLOCK, 0): (0, 1), TP(VISITS, 0): (0, 2)}
    assert order.buffered() == 0


def test_buffered_later_records_let_a_record_pass_without_asking_the_broker() -> None:
    order = _order()
    order.add(TP(CLOCK, 0), _records(CLOCK, 100, 500))
    order.add(TP(VISITS, 0), _records(VISITS, 300))
    order.add(TP(TAPS, 0), _records(TAPS, 400))
    released, _ = order.take(_sources, caught_up=lambda tp: False, barriers=_barriers)
    # Once the visits' buffer is empty, a visit older than the tap at 400 may still be
    # on the broker: the tap waits for the visits to be read to their end.
    assert _seen(released) == [(CLOCK, 100), (VISITS, 300)]
    assert order.buffered() == 2
    released, _ = order.take(_sources, caught_up=lambda tp: tp == TP(VISITS, 0), barriers=_barriers)
    assert _seen(released) == [(TAPS, 400)]
    assert order.has(TP(CLOCK, 0))


def test_a_source_read_far_behind_is_not_overtaken_by_another_source() -> None:
    """A register read behind (the pensioner records of a large province) is not
    overtaken by the first day's visits of the same persons."""
    order = _order()
    order.add(TP(VISITS, 0), _records(VISITS, 300, 310))
    order.add(TP(CLOCK, 0), _records(CLOCK, 400))
    released, _ = order.take(_sources, caught_up=lambda tp: tp != TP(TAPS, 0), barriers=_barriers)
    assert released == []
    order.add(TP(TAPS, 0), _records(TAPS, 100, 305))
    released, _ = order.take(_sources, caught_up=lambda tp: tp != TP(TAPS, 0), barriers=_barriers)
    assert _seen(released) == [(TAPS, 100), (VISITS, 300), (TAPS, 305)]
    released, _ = order.take(_sources, caught_up=lambda tp: True, barriers=_barriers)
    assert _seen(released) == [(VISITS, 310), (CLOCK, 400)]


def test_a_record_waits_for_a_tick_that_may_not_have_been_fetched_yet() -> None:
    # The clock of partition 0 is not read to its end: a tick older than the visit may
    # still be on the broker, and the visit must not overtake it.
    order = _order()
    order.add(TP(VISITS, 0), _records(VISITS, 300))
    order.add(TP(TAPS, 0), _records(TAPS, 310))
    released, _ = order.take(_sources, caught_up=lambda tp: tp.topic != CLOCK, barriers=_barriers)
    assert released == []
    # The older tick arrives and goes; the records still wait: the clock may hold more.
    order.add(TP(CLOCK, 0), _records(CLOCK, 200))
    released, _ = order.take(_sources, caught_up=lambda tp: tp.topic != CLOCK, barriers=_barriers)
    assert _seen(released) == [(CLOCK, 200)]
    # Read to its end, the empty clock lets them go.
    released, _ = order.take(_sources, caught_up=lambda tp: True, barriers=_barriers)
    assert _seen(released) == [(VISITS, 300), (TAPS, 310)]


def test_on_equal_times_sources_go_before_the_tick_and_partitions_are_independent() -> None:
    order = _order()
    order.add(TP(CLOCK, 0), _records(CLOCK, 100))
    order.add(TP(VISITS, 0), _records(VISITS, 100))
    order.add(TP(CLOCK, 1), _records(CLOCK, 100))  # partition 1's taps are behind
    released, _ = order.take(_sources, caught_up=lambda tp: tp.partition == 0, barriers=_barriers)
    assert _seen(released) == [(VISITS, 100), (CLOCK, 100)]
    assert order.waiting_barriers() == {1}
    order.forget([TP(CLOCK, 1)])
    assert order.buffered() == 0
