"""The one exception tree of databus.

Every error a user can meet derives from :class:`DatabusError` and carries the data
needed to act on it (dataset, field path, topic, partition, offset) plus a readable
``__str__``. A rejected *record* is not an error: it is a :class:`~databus.wire.Rejection`
value that travels to the dead-letter topic.
"""

from __future__ import annotations


class DatabusError(Exception):
    """Root of every databus error."""

    retriable: bool = False


class ConfigurationError(DatabusError):
    """A setting is missing or invalid (for example no pseudonym key outside the demo)."""


class CatalogError(DatabusError):
    """A dataset name is unknown or the catalog is inconsistent."""

    def __init__(self, message: str, *, dataset: str | None = None) -> None:
        super().__init__(message)
        self.dataset = dataset


class BrokerError(DatabusError):
    """The local broker cannot be started, stopped or reached."""


class TopicLayoutError(DatabusError):
    """An existing topic disagrees with the catalog in a way we refuse to change."""

    def __init__(self, message: str, *, topic: str) -> None:
        super().__init__(message)
        self.topic = topic


class MissingTopicError(DatabusError):
    """A dataset's topic does not exist on the broker (run ``databus topics apply``)."""


class SchemaCompatibilityError(DatabusError):
    """``schemas/`` is stale or a schema change breaks backward compatibility."""


class DecodeError(DatabusError):
    """A Kafka message could not be decoded into a typed record."""

    def __init__(
        self,
        reason: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.topic = topic
        self.partition = partition
        self.offset = offset

    def __str__(self) -> str:
        where = f"{self.topic}[{self.partition}]@{self.offset}" if self.topic else "message"
        return f"cannot decode {where}: {self.reason}"


class AccessDeniedError(DatabusError):
    """The broker refused this user something (its ACLs): a topic, or a consumer group."""

    def __init__(self, message: str, *, principal: str, resource: str) -> None:
        super().__init__(message)
        self.principal = principal
        self.resource = resource
