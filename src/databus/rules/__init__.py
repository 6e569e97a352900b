"""The decision rules (DOMAIN.md §1-2) as pure functions: no I/O, no clock, no Kafka.

``on_event(state, observation, policy)`` and ``on_tick(state, as_of, policy)`` return the
person's new state and the decisions to publish; ``next_due`` says when a person needs
a tick. Time comes only from ``occurred_at`` (taken in the policy's time zone) and from
ticks, so replaying the same topics gives the same decisions with the same ids.
"""

from databus.rules.decision import (
    ELDERLY_ALLOWANCE,
    FRAUD_ALERT,
    PENSION_STATUS,
    Decision,
    Observation,
)
from databus.rules.engine import RULE_INPUTS, next_due, on_event, on_tick
from databus.rules.policy import Policy, Tier, load_policy
from databus.rules.state import PersonState, StateFormatError

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
    "load_policy",
    "next_due",
    "on_event",
    "on_tick",
]
