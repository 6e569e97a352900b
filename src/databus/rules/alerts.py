"""Post-mortem activity alerts (``derived.fraud_alert.v1``, ``pension/1``) and their
withdrawal (docs/rules.md, "Fraud alerts").

Evidence of life (strong or weak) dated after a registered death raises one alert per
event: a dead person's card or identity in use. An alert cites the activity and the
death evidence that fixes the date of death (``refs[0]`` of the death in force).

Cases left open, and what we decided:

- *Alerts are raised for tracked pensioners* (the only persons whose evidence is held
  for 90 days), including after the pension was suspended for the death, and for the
  activity held when a dead person's pensioner record arrives. A terminated pension pays
  nothing, so it raises none. Evidence dated on the day of death is not an alert.
- *Activity dated before the held log's horizon* raises no alert: the log has forgotten
  events dated before it (90 days before the newest held for a tracked pensioner, 30
  for anyone else, when it last forgot one), and the state cannot tell news from a
  redelivery of an event it forgot — redelivered, it would raise an alert the first
  delivery never did (found by the property "applying the same event twice changes
  nothing": twice, for a tracked pensioner, and for a face scan forgotten before the
  person became a pensioner).
- *Every alert in force is remembered with the death*, so that it can be withdrawn: a
  ``withdrawn`` alert carries the same person, death evidence, date of death and
  activity as the alert it cancels, and consumers match the two by the activity's id.
  At most :data:`~databus.rules.state.MAX_ALERTS` (100) per death: past that a death
  raises no more alerts (investigators have a hundred for it already), so that every
  alert raised can be withdrawn.
- *Withdrawn* are the alerts of an activity record that its agency withdraws, and every
  alert of a death whose records are all withdrawn. When the record that fixes the date
  of death is withdrawn and other death records remain, every alert is withdrawn (it
  cites the withdrawn record) and raised again, citing the record that fixes the date
  now, for each remembered or held activity dated after the date now in force.
"""

from __future__ import annotations

from databus.records import FraudAlert
from databus.rules.decision import FRAUD_ALERT, Decision, decision_id, epoch_tag
from databus.rules.evidence import Ref, evidence_ref
from databus.rules.policy import Policy
from databus.rules.state import MAX_ALERTS, DeathState, PersonState


def raised(
    state: PersonState, death: DeathState, activity: Ref, policy: Policy
) -> tuple[DeathState, Decision | None]:
    """An alert for ``activity`` and the death remembering it; no alert when one is in
    force for it already, or when the death has :data:`MAX_ALERTS` of them."""
    alerted = death.alerted
    if len(alerted) >= MAX_ALERTS or any(known[0] == activity[0] for known in alerted):
        return death, None
    remembered = DeathState(death.date_of_death, death.refs, death.dates, (*alerted, activity))
    decision = _alert(state, death, activity, policy, kind="post_mortem_activity", identity=())
    return remembered, decision


def withdrawn(
    state: PersonState, death: DeathState, activity: Ref, cause: str, policy: Policy
) -> Decision:
    """The cancellation of the alert in force for ``activity`` under ``death``, because
    the record ``cause`` (the activity itself, or a death record) was withdrawn."""
    return _alert(state, death, activity, policy, kind="withdrawn", identity=(cause,))


def _alert(
    state: PersonState,
    death: DeathState,
    activity: Ref,
    policy: Policy,
    *,
    kind: str,
    identity: tuple[str, ...],
) -> Decision:
    """An alert of ``kind`` about ``activity``; its id hashes the kind, the activity,
    ``identity`` (what withdrew it) and the person's epoch."""
    record = FraudAlert.model_validate(
        {
            "person_ref": state.person_ref,
            "kind": kind,
            "date_of_death": death.date_of_death,
            "death_evidence": evidence_ref(death.refs[0]),
            "activity": evidence_ref(activity),
            "rule_version": policy.pension_rule_version,
        }
    )
    ident = decision_id(
        policy.pension_rule_version,
        state.person_ref,
        kind,
        activity[0],
        *identity,
        *epoch_tag(state.epoch),
    )
    return Decision(ident, FRAUD_ALERT, record)
