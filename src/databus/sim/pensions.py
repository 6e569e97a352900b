"""Pensions: the roster entry, last year's face scan, and what keeps a pension going.

The simulator does not read the decisions, but it knows DOMAIN.md §1 well enough to let
pensioners behave as if they did: evidence of life keeps a pension qualified for a year;
without it some scan their face out of habit before the reminder, most answer the
reminder with a face scan, and a few never do and stay suspended until the next evidence.
Weak evidence (three bus rides in a month) is left out of this reckoning, so now and then
someone answers a reminder the worker never sent, which is harmless.
"""

from __future__ import annotations

import random
from typing import Final

from databus.rules.dates import add_months
from databus.sim import kinds
from databus.sim.schedule import HOUR, Happening, Life, Schedule, office

#: DOMAIN.md §1: a pension stays qualified 12 months after the evidence; reminders come
#: 30 days before the deadline.
CYCLE_MONTHS: Final = 12
REMINDER_DAYS: Final = 30
OLD_AGE: Final = 80


class Pensions:
    """Draws the pension side of each pensioner's span into a :class:`Schedule`."""

    def __init__(self, schedule: Schedule, rng: random.Random) -> None:
        self.schedule = schedule
        self.rates = schedule.config.rates
        self.rng = rng

    def draw(self, life: Life, strong: list[int]) -> list[Happening]:
        """The pensioner record, last year's face scan, and the face scans that keep a
        pension going when nothing else shows the pensioner is alive."""
        plan = life.resident.pension
        if plan is None:
            return []
        rng = self.rng
        schedule = self.schedule
        person = life.resident.index
        approved = schedule.index(plan.approved)
        roster: list[Happening] = []
        deadline = schedule.index(add_months(plan.benefit_start, CYCLE_MONTHS))
        if approved >= 0:
            if approved >= life.limit:
                return []
            schedule.add(approved, office(rng), kinds.PENSION_ACTIVE, person)
            schedule.tally.new_pensioners += 1
        elif schedule.index(plan.benefit_start) < -REMINDER_DAYS:
            earliest = max(schedule.index(plan.benefit_start), -365)
            day = rng.randrange(earliest, 0)
            channel, second = self._face_channel(life, day)
            roster.append(
                schedule.happening(day, second, kinds.FACE_AUTHENTICATION, person, channel)
            )
            deadline = max(deadline, self._qualified_until(day))
        life.tracked_from = approved
        self._keep_qualified(life, strong, deadline)
        return roster

    def _keep_qualified(self, life: Life, strong: list[int], deadline: int) -> None:
        """Walk the pensioner's deadlines (DOMAIN.md §1): evidence pushes the deadline a
        year on; without it a habitual scanner scans before the reminder, others answer
        the reminder with a face scan (sometimes after the deadline, so the pension is
        suspended and then resumed) or not at all (suspended until the next evidence)."""
        rng = self.rng
        tally = self.schedule.tally
        habit = rng.random() < self.rates.face_scan_habit_share
        pending = iter(strong)
        upcoming = next(pending, None)
        while deadline - REMINDER_DAYS < life.limit:
            reminder = deadline - REMINDER_DAYS
            if upcoming is not None and upcoming < reminder:
                deadline = max(deadline, self._qualified_until(upcoming))
                upcoming = next(pending, None)
                continue
            scan = reminder - rng.randint(1, 20)
            if habit and scan >= max(0, life.tracked_from):
                self._scan(life, scan)
                tally.habit_face_scans += 1
                deadline = max(deadline, self._qualified_until(scan))
                continue
            if upcoming is not None and upcoming <= deadline:
                deadline = max(deadline, self._qualified_until(upcoming))
                upcoming = next(pending, None)
                continue
            if rng.random() < self.rates.reminder_response_share:
                scan = max(reminder, 0) + rng.randint(1, 32)
                if scan >= life.limit:
                    return
                self._scan(life, scan)
                tally.reminder_face_scans += 1
                deadline = max(deadline, self._qualified_until(scan))
                while upcoming is not None and upcoming < scan:
                    upcoming = next(pending, None)
                continue
            if upcoming is None:
                return
            deadline = max(deadline, self._qualified_until(upcoming))
            upcoming = next(pending, None)

    def _qualified_until(self, day: int) -> int:
        schedule = self.schedule
        return schedule.index(add_months(schedule.date(day), CYCLE_MONTHS))

    def _scan(self, life: Life, day: int) -> None:
        channel, second = self._face_channel(life, day)
        self.schedule.add(day, second, kinds.FACE_AUTHENTICATION, life.resident.index, channel)

    def _face_channel(self, life: Life, day: int) -> tuple[str, int]:
        """Away from the province only the app works; the oldest are mostly visited."""
        rng = self.rng
        draw = rng.random()
        if not life.present(day):
            channel = "app"
        elif life.age >= OLD_AGE:
            channel = "home_visit" if draw < 0.5 else "counter" if draw < 0.7 else "app"  # noqa: PLR2004
        else:
            channel = "app" if draw < 0.6 else "counter" if draw < 0.9 else "home_visit"  # noqa: PLR2004
        if channel == "app":
            return channel, rng.randrange(8 * HOUR, 21 * HOUR)
        return channel, office(rng)
