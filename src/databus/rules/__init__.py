"""The decision rules as pure functions: no I/O, no clock, no Kafka (docs/rules.md says
what they decide, in words).

``on_event(state, observation, policy)``, ``on_tick(state, as_of, policy)`` and
``on_reset(state, as_of, policy)`` return the person's new state and the decisions to
publish; ``next_due`` says when a person needs a tick and ``affected_by_reset`` whether
a reset concerns them. Time comes only from ``occurred_at`` (taken in the policy's time
zone) and from ticks, so replaying the same topics gives the same decisions with the
same ids.
"""

from databus.errors import StateFormatError
from databus.rules.decision import (
    ELDERLY_ALLOWANCE,
    FRAUD_ALERT,
    PENSION_STATUS,
    Decision,
    Observation,
)
from databus.rules.engine import (
    RULE_INPUTS,
    affected_by_reset,
    next_due,
    on_event,
    on_reset,
    on_tick,
)
from databus.rules.policy import Policy, Tier, load_policy
from databus.rules.state import PersonState

__all__ = [
    "ELDERLY_ALLOWANCE",
    "FRAUD_ALERT",
    "PENSION_STATUS",
    "RULE_INPUTS",
    "Decision",
    "Observation",
    "PersonState",
    "Policy",
    "StateFormatError",
    "Tier",
    "affected_by_reset",
    "load_policy",
    "next_due",
    "on_event",
    "on_reset",
    "on_tick",
]
