"""databus: an event-driven data-sharing bus between government agencies, on Kafka.

The public surface is small: publish agency records, subscribe to datasets, read the
catalog and the settings. Everything else is reachable by its module path.
"""

from databus.catalog import CATALOG, Dataset
from databus.client.publisher import Publisher, PublishSummary
from databus.client.subscriber import Subscriber
from databus.errors import DatabusError
from databus.settings import Settings
from databus.wire import Event, Rejection

__all__ = [
    "CATALOG",
    "DatabusError",
    "Dataset",
    "Event",
    "PublishSummary",
    "Publisher",
    "Rejection",
    "Settings",
    "Subscriber",
]
