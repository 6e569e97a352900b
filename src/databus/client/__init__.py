"""Publisher and subscriber SDKs on aiokafka."""

from databus.client.intake import Intake
from databus.client.publisher import Publisher, PublishSummary
from databus.client.subscriber import Subscriber

__all__ = ["Intake", "PublishSummary", "Publisher", "Subscriber"]
