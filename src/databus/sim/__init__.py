"""A reproducible synthetic province: residents, pensions, and the agencies' daily records.

>>> from databus.sim import Province, SimulationConfig
>>> province = Province(SimulationConfig(seed=7, residents=20_000, days=400))
>>> roster = province.roster()                 # registers before day 1
>>> for day in province.days():                # then each day's records, in order
...     for dataset, values in day.records:    # values: the agency's JSON object
...         pass
>>> province.summary().records                 # counts per dataset

Same seed and parameters give byte-identical records. ``write_ndjson`` writes one file
per dataset; ``publish_province`` publishes with the Publisher SDK, day by day, with a
clock tick after each day.
"""

from databus.sim.config import Rates, SimulationConfig
from databus.sim.kinds import AgencyRecord
from databus.sim.output import write_ndjson
from databus.sim.province import Day, Province, SimulationSummary
from databus.sim.publishing import DayTicks, PublishedSimulation, publish_province

__all__ = [
    "AgencyRecord",
    "Day",
    "DayTicks",
    "Province",
    "PublishedSimulation",
    "Rates",
    "SimulationConfig",
    "SimulationSummary",
    "publish_province",
    "write_ndjson",
]
