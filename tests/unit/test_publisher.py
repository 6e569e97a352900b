"""The publisher's own rules, without a broker: whose source it may claim, and metric
labels that stay a closed set whatever a rejection says."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from databus.client.publisher import Publisher, _count_rejection, fixed_source
from databus.errors import ConfigurationError
from databus.records.dlq import Reason
from databus.settings import Settings
from databus.wire import Rejection

KEY = "publisher-unit-test-key-of-32-bytes-or-more"


def _sasl(user: str) -> Settings:
    return Settings(
        pseudonym_key=KEY,
        demo=False,
        security_protocol="SASL_PLAINTEXT",
        sasl_username=user,
        sasl_password="pw",
    )


def test_without_sasl_the_source_is_as_given() -> None:
    plain = Settings(pseudonym_key=KEY, demo=False)
    assert fixed_source(plain, None) is None
    assert fixed_source(plain, "police") == "police"


def test_with_sasl_the_source_is_the_user() -> None:
    assert fixed_source(_sasl("health"), None) == "health"
    assert fixed_source(_sasl("health"), "health") == "health"


async def test_with_sasl_another_agency_as_source_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"source 'police'.* user it logs in as, health"):
        fixed_source(_sasl("health"), "police")
    with pytest.raises(ConfigurationError, match="cannot publish as source 'police'"):
        Publisher(_sasl("health"), source="police")


def _series(dataset: str) -> dict[str, float]:
    return {
        sample.labels["reason"]: sample.value
        for metric in REGISTRY.collect()
        if metric.name == "databus_publish_rejections"
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["dataset"] == dataset
    }


def test_a_reason_naming_something_else_is_counted_as_the_whole_line() -> None:
    dataset = "test.counting.v1"
    reasons = [
        Reason.of("440524188001010014", "m", "value_error"),
        Reason.of("visit_id.0", "m", "made-up-kind"),
        Reason.of("$extra", "m", "extra_forbidden"),
    ]
    _count_rejection(Rejection(dataset, "health", "", reasons), "health", frozenset({"visit_id"}))
    assert _series(dataset) == {
        "$:value_error": 1.0,
        "visit_id:invalid": 1.0,
        "$extra:extra_forbidden": 1.0,
    }
