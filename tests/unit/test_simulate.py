"""``databus simulate``: a reproducible, valid, China-like province (no broker)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from databus.catalog import CATALOG
from databus.cli import main
from databus.client.files import read_lines
from databus.client.intake import Intake
from databus.errors import ConfigurationError, DatabusError
from databus.identity import ID_LIKE, Pseudonymizer, normalise_citizen_id
from databus.settings import Settings
from databus.sim import Province, Rates, SimulationConfig, write_ndjson
from databus.sim.geography import counties_and_weights
from databus.sim.publishing import DayTicks
from databus.wire import Message
from tests.replay import replay

SOURCES = [dataset.name for dataset in CATALOG.sources()]
#: What the simulator draws: every source dataset but the retractions of agencies whose
#: mistakes it does not simulate (only health withdraws records: wrong death certificates).
SIMULATED = [
    name for name in SOURCES if not name.endswith(".retraction.v1") or name.startswith("health.")
]
DEATH_DATASETS = {"health.death_certificate.v1", "civil.funeral.v1"}
EVIDENCE = {
    "hrss.face_authentication.v1",
    "health.hospital_visit.v1",
    "health.physical_exam.v1",
    "transport.transit_tap.v1",
}
SMALL = SimulationConfig(seed=11, residents=1_500, days=120)


@pytest.fixture(scope="module")
def demo() -> Province:
    """The demo's province: 20,000 residents over 400 days, default rates."""
    return Province(SimulationConfig(seed=7, residents=20_000, days=400))


@pytest.fixture(scope="module")
def town() -> Province:
    """A smaller province over the demo's span, for tests that read every record; a few
    more dead pensioners' cards are used than by default, so that it has some at all."""
    rates = Rates(post_mortem_card_share=0.5)
    return Province(SimulationConfig(seed=7, residents=4_000, days=400, rates=rates))


def _files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def _day_of(values: dict[str, object]) -> dt.date:
    return dt.date.fromisoformat(str(values["occurred_at"])[:10])


# --- reproducibility -----------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    write_ndjson(Province(SMALL), tmp_path / "a")
    write_ndjson(Province(SMALL), tmp_path / "b")
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert sorted(first) == sorted(f"{name}.ndjson" for name in SOURCES)
    assert first == second
    assert all(first[f"{name}.ndjson"] for name in SIMULATED)


def test_another_seed_gives_other_records(tmp_path: Path) -> None:
    write_ndjson(Province(SMALL), tmp_path / "a")
    other = SimulationConfig(seed=12, residents=SMALL.residents, days=SMALL.days)
    write_ndjson(Province(other), tmp_path / "b")
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert all(first[f"{n}.ndjson"] != second[f"{n}.ndjson"] for n in SIMULATED)


def test_same_seed_in_other_processes_gives_the_same_bytes(tmp_path: Path) -> None:
    """Nothing depends on the interpreter's hash seed or on the wall clock."""
    for run, hash_seed in (("a", "1"), ("b", "2")):
        command = [sys.executable, "-m", "databus", "simulate", "--seed", "5"]
        command += ["--residents", "400", "--days", "60", "--no-progress"]
        command += ["--out", str(tmp_path / run)]
        env = os.environ | {"PYTHONHASHSEED": hash_seed}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


# --- validity ------------------------------------------------------------------------


def test_every_record_passes_the_publish_validation(
    town: Province, tmp_path: Path, pseudonymizer: Pseudonymizer
) -> None:
    """The files go through the same path as ``databus publish DATASET FILE``."""
    paths = write_ndjson(town, tmp_path)
    total = 0
    for dataset, path in paths.items():
        intake = Intake(CATALOG.get(dataset), pseudonymizer)
        for line in read_lines(path):
            outcome = intake.from_line(line)
            assert isinstance(outcome, Message), outcome.summary()
            total += 1
    assert total == town.summary().total


def test_id_numbers_are_valid_unique_and_in_the_province(demo: Province) -> None:
    counties, _ = counties_and_weights()
    start = demo.config.start
    ids = [resident.citizen_id for resident in demo.residents]
    assert len(set(ids)) == len(ids)
    for resident in demo.residents:
        citizen_id = resident.citizen_id
        assert normalise_citizen_id(citizen_id, today=start) == citizen_id
        assert citizen_id[:6] in counties
        assert resident.region_code in counties
        assert citizen_id[6:14] == f"{resident.birth_date:%Y%m%d}"
        assert int(citizen_id[16]) % 2 == (1 if resident.male else 0)
    men = sum(resident.male for resident in demo.residents) / len(demo.residents)
    assert 0.47 < men < 0.53


def test_age_pyramid_is_china_like(demo: Province) -> None:
    start = demo.config.start
    ages = [resident.age_on(start) for resident in demo.residents]

    def share(low: int, high: int = 200) -> float:
        return sum(low <= age < high for age in ages) / len(ages)

    assert 0.14 < share(0, 15) < 0.22
    assert 0.15 < share(60) < 0.25
    assert 0.015 < share(80) < 0.04
    assert sum(age >= 90 for age in ages) >= 20
    assert 0 <= min(ages)
    assert max(ages) <= 105
    old = [r for r in demo.residents if r.age_on(start) >= 80]
    assert sum(not r.male for r in old) > sum(r.male for r in old)


def test_allowance_ages_are_reached_during_the_span(demo: Province) -> None:
    summary = demo.summary()
    assert summary.turned[80] > 20
    assert summary.turned[90] > 5
    assert summary.turned[100] >= 1
    assert summary.aged_80_plus_at_start > 300


def test_default_rates_give_the_demo_volume(demo: Province) -> None:
    """20,000 residents over 400 days: 150,000-300,000 records, every dataset present."""
    summary = demo.summary()
    assert 150_000 <= summary.total <= 300_000
    assert set(summary.records) == set(SIMULATED)
    assert max(summary.records, key=summary.records.__getitem__) == "transport.transit_tap.v1"
    assert summary.records["police.household.v1"] > summary.residents
    assert summary.deaths > 100
    assert summary.moves_out > 30
    assert summary.moves_back > 0
    assert summary.elderly_moves_out >= 1
    assert summary.post_mortem_taps > 0
    assert summary.late_death_records > 0
    assert 0.15 < summary.pensioners_at_start / summary.residents < 0.22
    assert summary.new_pensioners > 100


def test_summary_counts_every_record(town: Province) -> None:
    counted = Counter(record.dataset for record in town.records())
    summary = town.summary()
    assert summary.records == dict(counted)
    assert summary.total == counted.total()
    assert summary.roster_records == len(town.roster())


# --- the shape of the records ----------------------------------------------------------


def test_roster_is_registrations_then_pensions_then_last_years_face_scans(
    town: Province,
) -> None:
    roster = town.roster()
    datasets = [record.dataset for record in roster]
    order = ["police.household.v1", "hrss.pensioner.v1", "hrss.face_authentication.v1"]
    assert list(dict.fromkeys(datasets)) == order
    assert datasets == sorted(datasets, key=order.index)
    start = town.config.start
    registered = {r.values["citizen_id"] for r in roster if r.dataset == order[0]}
    assert len(registered) == town.config.residents
    pensioners = {r.values["citizen_id"] for r in roster if r.dataset == order[1]}
    assert pensioners <= registered
    for record in roster:
        assert _day_of(record.values) < start
        if record.dataset == order[1]:
            assert record.values["status"] == "active"
            # approved before the start, paid from at most three weeks later
            assert record.values["benefit_start"] <= f"{start + dt.timedelta(days=21)}"
        if record.dataset == order[2]:
            assert record.values["citizen_id"] in pensioners
            assert _day_of(record.values) >= start - dt.timedelta(days=366)


def test_days_come_in_order_with_records_in_time_order(town: Province) -> None:
    days = list(town.days())
    assert [day.date for day in days] == [
        town.config.start + dt.timedelta(days=n) for n in range(town.config.days)
    ]
    for day in days:
        times = [str(record.values["occurred_at"]) for record in day.records]
        assert times == sorted(times)
        for record in day.records:
            assert _day_of(record.values) <= day.date
            if record.dataset in EVIDENCE:
                assert _day_of(record.values) == day.date


def test_deaths_are_followed_by_their_records(town: Province) -> None:
    deaths: dict[str, set[str]] = defaultdict(set)
    arrivals: list[tuple[str, dt.date, dt.date]] = []
    for day in town.days():
        for dataset, values in day.records:
            if dataset in DEATH_DATASETS or values.get("event") == "deregistered_death":
                died = dt.date.fromisoformat(values["date_of_death"])
                occurred = _day_of(values)
                deaths[values["citizen_id"]].add(values["date_of_death"])
                arrivals.append((dataset, died, occurred))
                assert occurred <= day.date
                lag = (occurred - died).days
                if dataset == "health.death_certificate.v1":
                    assert 0 <= lag <= 2
                elif dataset == "civil.funeral.v1":
                    assert 2 <= lag <= 5
                else:
                    assert 3 <= lag <= 180
    assert len(deaths) > 20
    assert all(len(dates) == 1 for dates in deaths.values())
    kinds = Counter(dataset for dataset, _, _ in arrivals)
    assert set(kinds) == {*DEATH_DATASETS, "police.household.v1"}


def test_nothing_happens_to_the_dead_but_someone_using_their_card(town: Province) -> None:
    died = {}
    for record in town.records():
        if "date_of_death" in record.values:
            died[record.values["citizen_id"]] = dt.date.fromisoformat(
                record.values["date_of_death"]
            )
    for record in town.records():  # a mistaken certificate, withdrawn: they live
        if record.dataset == "health.retraction.v1":
            died.pop(record.values["citizen_id"], None)
    after_death = [
        record
        for record in town.records()
        if record.dataset in EVIDENCE
        and record.values["citizen_id"] in died
        and _day_of(record.values) > died[record.values["citizen_id"]]
    ]
    assert after_death
    for record in after_death:
        assert record.dataset == "transport.transit_tap.v1"
        assert record.values["mode"] in {"bus", "metro"}
        assert record.values["identity_verified"] is False
        assert record.values["card_id"].startswith("TC-")
    # whoever uses the card keeps the pension: hrss never terminates it, so the fraud
    # alert does not depend on the order in which a worker reads the topics
    card_used = {record.values["citizen_id"] for record in after_death}
    terminated = {
        record.values["citizen_id"]
        for record in town.records()
        if record.dataset == "hrss.pensioner.v1" and record.values["status"] == "terminated"
    }
    assert terminated
    assert not card_used & terminated


def test_moves_leave_the_province_and_come_back(demo: Province) -> None:
    events: Counter[tuple[object, bool]] = Counter()
    for record in demo.records():
        event = record.values.get("event")
        if event in {"moved_out", "moved_in"}:
            inside = str(record.values["region_code"]).startswith("37")
            events[event, inside] += 1
    summary = demo.summary()
    assert events == {
        ("moved_out", False): summary.moves_out,
        ("moved_in", True): summary.moves_back,
    }


# --- what the decision rules make of it ------------------------------------------------


def test_the_rules_make_every_kind_of_decision_and_mostly_confirm(town: Province) -> None:
    decided, reminded, tracked = replay(town)
    pension, alert, allowance = (
        "derived.pension_status.v1",
        "derived.fraud_alert.v1",
        "derived.elderly_allowance.v1",
    )
    expected = {
        (pension, "confirmed", "evidence"),
        (pension, "reminder", "no_evidence"),
        (pension, "suspended", "no_evidence"),
        (pension, "resumed", "evidence"),
        (pension, "suspended", "deceased"),
        (alert, "post_mortem_activity", ""),
        (allowance, "granted", "age"),
        (allowance, "tier_changed", "age"),
        (allowance, "stopped", "deceased"),
        (allowance, "stopped", "moved_out"),
    }
    assert expected <= set(decided), sorted(expected - set(decided))
    assert len(reminded) < tracked / 2
    assert (
        decided[pension, "confirmed", "evidence"] > 5 * decided[pension, "reminder", "no_evidence"]
    )
    assert decided[pension, "suspended", "no_evidence"] < tracked / 10


# --- configuration ---------------------------------------------------------------------


def test_rates_refuse_nonsense() -> None:
    with pytest.raises(ConfigurationError, match="hospital_visits_per_year"):
        Rates(hospital_visits_per_year=-1)
    with pytest.raises(ConfigurationError, match="share"):
        Rates(funeral_share=1.5)
    with pytest.raises(ConfigurationError, match="unknown rate 'flights'"):
        Rates().replaced({"flights": "1"})
    with pytest.raises(ConfigurationError, match="not a number"):
        Rates().replaced({"flights_per_year": "many"})
    with pytest.raises(ConfigurationError, match="residents"):
        SimulationConfig(residents=0)
    changed = Rates().replaced({"flights_per_year": "0.5", "min_tier_crossings": "3"})
    assert (changed.flights_per_year, changed.min_tier_crossings) == (0.5, 3)


def test_a_rate_of_zero_means_none_of_it() -> None:
    rates = Rates(flights_per_year=0, rail_trips_per_year=0, physical_exams_per_year=0)
    province = Province(SimulationConfig(seed=3, residents=2_000, days=60, rates=rates))
    modes = {r.values["mode"] for r in province.records() if "mode" in r.values}
    assert modes <= {"bus", "metro"}
    assert "health.physical_exam.v1" not in province.summary().records


# --- the command -----------------------------------------------------------------------


def test_cli_writes_one_file_per_dataset_and_shows_no_id(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    args = ["simulate", "--residents", "300", "--days", "30", "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == sorted(f"{n}.ndjson" for n in SOURCES)
    lines = (out / "police.household.v1.ndjson").read_bytes().splitlines()
    assert len(lines) >= 300
    assert orjson.loads(lines[0])["event"] == "registered"
    assert "police.household.v1" in result.output
    assert "records in total" in result.output
    assert not ID_LIKE.search(result.output)


def test_cli_rate_option_changes_the_rates(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    args = ["simulate", "--residents", "500", "--days", "30", "--out", str(out)]
    args += ["--rate", "bus_metro_taps_per_year=0", "--rate", "rail_trips_per_year=0"]
    args += ["--rate", "flights_per_year=0", "--rate", "post_mortem_card_share=0"]
    result = CliRunner().invoke(main, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (out / "transport.transit_tap.v1.ndjson").read_bytes() == b""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--residents", "10"], "--out DIR and/or --publish"),
        (["--out", "x", "--ticks"], "--ticks needs --publish"),
        (["--out", "x", "--rate", "flights"], "expected NAME=VALUE"),
        (["--out", "x", "--rate", "flights=1"], "unknown rate 'flights'"),
    ],
    ids=["no-destination", "ticks-without-publish", "rate-without-value", "unknown-rate"],
)
def test_cli_refuses_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    args = [str(tmp_path / "x") if arg == "x" else arg for arg in args]
    result = CliRunner().invoke(main, ["simulate", *args], catch_exceptions=False)
    assert result.exit_code == 2
    assert message in result.output


def test_mistaken_death_certificates_are_withdrawn_with_the_certificate(demo: Province) -> None:
    """A living pensioner's death certificate issued by mistake, and health's retraction
    of it a few days later carrying the certificate as it was published."""
    certificates: dict[str, dict[str, object]] = {}
    retractions = []
    for day in demo.days():
        for record in day.records:
            if record.dataset == "health.death_certificate.v1":
                certificates[str(record.values["certificate_no"])] = record.values
            elif record.dataset == "health.retraction.v1":
                retractions.append((day.date, record.values))
    summary = demo.summary()
    assert summary.wrong_death_certificates == summary.retractions >= 1
    assert len(retractions) == summary.retractions
    for day, retraction in retractions:
        withdrawn = retraction["record"]
        assert isinstance(withdrawn, dict)
        assert certificates[str(withdrawn["certificate_no"])] == withdrawn
        assert retraction["citizen_id"] == withdrawn["citizen_id"]
        assert retraction["dataset"] == "health.death_certificate.v1"
        issued = dt.date.fromisoformat(str(withdrawn["occurred_at"])[:10])
        assert 2 <= (day - issued).days <= 14


async def test_a_simulation_never_ticks_the_future_of_a_real_bus() -> None:
    """`simulate --publish --ticks --start` in the future, against a bus that is not a
    demo broker: its records are refused (dated in the future), and so is its first
    tick, which would otherwise decide every deadline up to that day."""
    clock = DayTicks(Settings(bootstrap_servers="127.0.0.1:1"))
    try:
        with pytest.raises(DatabusError, match="is after tomorrow"):
            await clock.tick(dt.date(2099, 1, 1))
    finally:
        await clock.stop()
