"""Evidence as the rules keep it: references to source events and a per-person log.

A reference (:data:`Ref`) names one source event by ``ce_id``, dataset and
``occurred_at``; it becomes an ``EvidenceRef`` of a decision. The :class:`HeldEvidence`
log keeps a person's recent evidence of life in columns sorted by local day: it answers
"was this event seen already?" (redelivery), "is there a weak run?" and "what activity
is dated after this death?" without parsing anything again.

What is held, and why (DOMAIN.md leaves retention to us): every evidence event of the
last days before the newest one held, so that a redelivered event is recognised and a
weak run is found whatever the order of arrival. For a tracked pensioner that is
``evidence_retention_days`` (at least 90), so that a death record arriving late can be
checked against the activity; for anyone else ``weak_window_days`` (30), because most
people are not pensioners and their log must stay small.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

DATASETS: Final[tuple[str, ...]] = (
    "hrss.face_authentication.v1",
    "health.physical_exam.v1",
    "health.hospital_visit.v1",
    "transport.transit_tap.v1",
    "health.death_certificate.v1",
    "civil.funeral.v1",
    "police.household.v1",
    "hrss.pensioner.v1",
    "hrss.retraction.v1",
    "health.retraction.v1",
    "transport.retraction.v1",
    "civil.retraction.v1",
    "police.retraction.v1",
)
"""Datasets a reference can name; stored state refers to them by position, so this
tuple may only grow at the end."""

LIFE_DATASETS: Final = frozenset(DATASETS[:4])
"""Datasets of evidence of life."""

DATASET_CODES: Final[dict[str, int]] = {name: code for code, name in enumerate(DATASETS)}

Ref = tuple[str, int, str]
"""One source event: (``ce_id``, position in :data:`DATASETS`, ``occurred_at`` RFC 3339)."""


def evidence_ref(ref: Ref) -> dict[str, str]:
    """The ``EvidenceRef`` fields of a reference."""
    return {"id": ref[0], "dataset": DATASETS[ref[1]], "occurred_at": ref[2]}


@dataclass(frozen=True, slots=True)
class HeldEvidence:
    """Recent evidence of life of one person, as columns sorted by local day.

    ``days`` are proleptic ordinals of ``day(e)``; ``kinds`` are
    ``2 * dataset code + (1 if weak else 0)``; ``ids`` and ``times`` are the ``ce_id``
    and ``occurred_at`` of each event. Equal days keep their arrival order.
    """

    days: tuple[int, ...] = ()
    kinds: tuple[int, ...] = ()
    ids: tuple[str, ...] = ()
    times: tuple[str, ...] = ()
    horizon: int = 0
    """The day (ordinal) from which the log is complete: every event dated on or after
    it that was delivered is held; one dated before it may have been, and forgotten."""

    def __len__(self) -> int:
        return len(self.days)

    def holds(self, day: int, event_id: str) -> bool:
        """Whether the event ``event_id`` dated ``day`` is held (a redelivery)."""
        days = self.days
        start = bisect_left(days, day)
        end = bisect_right(days, day, start)
        return event_id in self.ids[start:end]

    def find(self, event_id: str, code: int) -> int | None:
        """The index of the event ``event_id`` of dataset ``code``, if it is held."""
        ids, kinds = self.ids, self.kinds
        for index in range(len(ids) - 1, -1, -1):
            if ids[index] == event_id and kinds[index] >> 1 == code:
                return index
        return None

    def without(self, index: int) -> HeldEvidence:
        """A log without the event at ``index`` (it was withdrawn)."""
        return HeldEvidence(
            (*self.days[:index], *self.days[index + 1 :]),
            (*self.kinds[:index], *self.kinds[index + 1 :]),
            (*self.ids[:index], *self.ids[index + 1 :]),
            (*self.times[:index], *self.times[index + 1 :]),
            self.horizon,
        )

    def ref(self, index: int) -> Ref:
        """The reference of the event at ``index``."""
        return (self.ids[index], self.kinds[index] >> 1, self.times[index])

    def inserted(self, day: int, kind: int, event_id: str, time: str) -> HeldEvidence:
        """A log that also holds this event (after those of the same day)."""
        at = bisect_right(self.days, day)
        if at == len(self.days):
            # The usual case, the newest event so far: concatenation copies twice as
            # fast as unpacking.
            return HeldEvidence(
                self.days + (day,),  # noqa: RUF005
                self.kinds + (kind,),  # noqa: RUF005
                self.ids + (event_id,),  # noqa: RUF005
                self.times + (time,),  # noqa: RUF005
                self.horizon,
            )
        return HeldEvidence(
            (*self.days[:at], day, *self.days[at:]),
            (*self.kinds[:at], kind, *self.kinds[at:]),
            (*self.ids[:at], event_id, *self.ids[at:]),
            (*self.times[:at], time, *self.times[at:]),
            self.horizon,
        )

    def remembers(self, day: int) -> bool:
        """Whether an event dated ``day`` would still be held had it been delivered (so
        that one not held is news, not a redelivery of a forgotten event)."""
        return day >= self.horizon

    def since(self, cutoff: int) -> HeldEvidence:
        """A log without the events dated before ``cutoff`` (complete from it on)."""
        at = bisect_left(self.days, cutoff)
        if at == 0:
            return self
        return HeldEvidence(
            self.days[at:],
            self.kinds[at:],
            self.ids[at:],
            self.times[at:],
            max(self.horizon, cutoff),
        )

    def after(self, day: int) -> Iterator[Ref]:
        """References of the events dated after ``day``, oldest first."""
        for index in range(bisect_right(self.days, day), len(self.days)):
            yield self.ref(index)

    def weak_run(
        self, day: int, floor: int, count: int, window: int
    ) -> tuple[int, tuple[Ref, ...]] | None:
        """The latest weak run that a weak event dated ``day`` may have completed.

        A run is ``count`` weak events on as many different days, the latest at most
        ``window`` days after the earliest; it counts on its latest day. Only runs whose
        latest day lies in ``[day, day + window]`` and after ``floor`` can be new, so only
        those are looked at. Returns that day and the run's references (the latest event
        of each day, oldest day first), or None.
        """
        days, kinds = self.days, self.kinds
        lowest = max(day, floor + 1)
        stop = bisect_left(days, lowest)
        last = None
        for end in range(bisect_right(days, day + window) - 1, stop - 1, -1):
            if not kinds[end] & 1 or days[end] == last:
                continue
            last = days[end]
            run = self._run_ending_at(end, count, window)
            if run is not None:
                return last, tuple(self.ref(index) for index in run)
        return None

    def latest_qualifying(self, count: int, window: int) -> tuple[int, tuple[Ref, ...]] | None:
        """The latest qualifying evidence held (a strong event, or a weak run; a strong
        event wins a tie): its day and references, or None."""
        days, kinds = self.days, self.kinds
        found: tuple[int, tuple[Ref, ...]] | None = None
        for index in range(len(days) - 1, -1, -1):
            if not kinds[index] & 1:
                found = (days[index], (self.ref(index),))
                break
        last = None
        for end in range(len(days) - 1, -1, -1):
            if found is not None and days[end] <= found[0]:
                break
            if not kinds[end] & 1 or days[end] == last:
                continue
            last = days[end]
            run = self._run_ending_at(end, count, window)
            if run is not None:
                return last, tuple(self.ref(index) for index in run)
        return found

    def _run_ending_at(self, end: int, count: int, window: int) -> tuple[int, ...] | None:
        days, kinds = self.days, self.kinds
        earliest = days[end] - window
        picks = [end]
        previous = days[end]
        for index in range(end - 1, -1, -1):
            if len(picks) >= count:
                break
            found = days[index]
            if found < earliest:
                break
            if kinds[index] & 1 and found != previous:
                picks.append(index)
                previous = found
        if len(picks) < count:
            return None
        return tuple(reversed(picks))


EMPTY: Final = HeldEvidence()


def retained(
    held: HeldEvidence, *, tracked: bool, retention_days: int, window_days: int
) -> HeldEvidence:
    """``held`` without the events too old to matter any more."""
    if not held.days:
        return held
    return held.since(held.days[-1] - (retention_days if tracked else window_days))
