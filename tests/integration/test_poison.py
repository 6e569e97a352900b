"""A message that cannot be decoded is reported with its position, and reading goes on."""

from __future__ import annotations

import random

import pytest
from aiokafka import AIOKafkaProducer

from databus.client.publisher import Publisher
from databus.client.subscriber import Subscriber
from databus.errors import DecodeError
from databus.settings import Settings
from databus.wire import Message
from tests.factories import make_citizen_id, sample_input

pytestmark = pytest.mark.integration

DATASET = "health.physical_exam.v1"


async def test_subscriber_skips_and_reports_a_poison_message(bus_settings: Settings) -> None:
    citizen_id = make_citizen_id("370124", sequence=random.randrange(1000))
    async with Publisher(bus_settings) as publisher:
        good = await publisher.publish(DATASET, sample_input(DATASET, citizen_id))
    assert isinstance(good, Message)
    producer = AIOKafkaProducer(bootstrap_servers=bus_settings.bootstrap_servers)
    await producer.start()
    try:
        # Same key, so same partition: the poison sits after the good event.
        poison = await producer.send_and_wait(
            DATASET, b"\xff not json", key=good.key, headers=good.headers
        )
        bare = await producer.send_and_wait(DATASET, b"{}", key=good.key)
    finally:
        await producer.stop()
    async with Publisher(bus_settings) as publisher:
        after = await publisher.publish(
            DATASET, sample_input(DATASET, citizen_id, exam_id="E-after")
        )
    assert isinstance(after, Message)

    errors: list[DecodeError] = []
    async with Subscriber(
        [DATASET], bus_settings, from_beginning=True, on_decode_error=errors.append
    ) as subscriber:
        ids = [event.envelope.id async for event in subscriber.events(idle_timeout=2)]

    assert good.id in ids
    assert after.id in ids
    positions = {(e.topic, e.partition, e.offset) for e in errors}
    assert (DATASET, poison.partition, poison.offset) in positions
    assert (DATASET, bare.partition, bare.offset) in positions
    reasons = {e.offset: e.reason for e in errors if e.partition == poison.partition}
    assert "invalid health.physical_exam.v1" in reasons[poison.offset]
    assert "missing header" in reasons[bare.offset]
