"""The pension rule as a Quix Streams application: the peer of ``decision_workers.py ours``.

    bench/.venv-quix/bin/python bench/peers/quix_pension.py --group ID --state-dir DIR \
        --events N --out TIMING.json TOPIC...

It runs in its own virtualenv (``bench/.venv-quix``, made by ``bench/run``) because
quixstreams 3.28 pins ``pydantic<2.14`` and ``pydantic-settings<2.16`` while our venv has
newer ones. The work per event is ours: ``databus.wire.decode`` of the record and its
CloudEvents headers, ``databus.rules.on_event`` on a ``PersonState`` held in Quix's
RocksDB state store (scoped by the message key, which is the ``person_ref``), and each
decision encoded with ``databus.wire.Encoder`` and produced to
``derived.pension_status.v1`` with ``to_topic`` (value and key; Quix forwards the input's
headers, not the decision's). The input topics are merged with ``concat``, so one state
store serves them all and Quix aligns the partitions by timestamp, as our worker orders
them by time. It stops itself after ``--events`` input events and writes its timing
(first and last event handled, wall clock) as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from quixstreams import Application, State, message_context

from databus.catalog import CATALOG
from databus.rules import Observation, PersonState, load_policy, on_event
from databus.settings import Settings
from databus.wire import Encoder, decode

STATE_KEY = "person"


@dataclass(frozen=True)
class Record:
    """A consumed message in the shape ``databus.wire.decode`` reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("topics", nargs="+", help="input topics")
    parser.add_argument("--group", required=True, help="consumer group")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--events", type=int, required=True, help="stop after this many")
    parser.add_argument("--out", type=Path, required=True, help="timing JSON")
    args = parser.parse_args()
    settings = Settings()
    policy = load_policy(settings.policy_file)
    decisions = CATALOG.get("derived.pension_status.v1")
    encoders = {
        d.name: Encoder(CATALOG.get(d.name), "databus")
        for d in CATALOG
        if d.name.startswith("derived.")
    }
    app = Application(
        broker_address=settings.bootstrap_servers,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=str(args.state_dir),
        loglevel="WARNING",
    )
    frames = [
        app.dataframe(app.topic(t, key_deserializer="bytes", value_deserializer="bytes"))
        for t in args.topics
    ]
    merged = frames[0]
    for frame in frames[1:]:
        merged = merged.concat(frame)
    output = app.topic(decisions.topic, key_serializer="bytes", value_serializer="bytes")
    timing = {"events": 0, "decisions": 0, "first": 0.0, "last": 0.0}

    def decide(value: bytes, key: bytes, _ts: int, headers: Any, state: State) -> list[bytes]:
        if not timing["first"]:
            timing["first"] = time.time()
        context = message_context()
        record = Record(context.topic, context.partition, context.offset, key, value, headers)
        event = decode(record)
        person_ref: str = event.record.person_ref  # type: ignore[attr-defined]
        stored = state.get(STATE_KEY)
        person = (
            PersonState.from_bytes(stored.encode()) if stored else PersonState.empty(person_ref)
        )
        observation = Observation(event.envelope.id, event.envelope.type, event.record)
        person, made = on_event(person, observation, policy)
        state.set(STATE_KEY, person.to_bytes().decode())
        out = []
        for decision in made:
            fields = decision.record.model_dump(mode="json")
            message = encoders[decision.dataset].encode(
                fields, subject=person_ref, event_id=decision.id
            )
            out.append(message.value)
        timing["events"] += 1
        timing["decisions"] += len(out)
        timing["last"] = time.time()
        if timing["events"] >= args.events:
            app.stop()
        return out

    merged.apply(decide, stateful=True, metadata=True, expand=True).to_topic(output)
    logging.getLogger("quixstreams").setLevel(logging.WARNING)
    app.run()
    timing["stopped"] = time.time()
    args.out.write_bytes(orjson.dumps(timing))


if __name__ == "__main__":
    main()
