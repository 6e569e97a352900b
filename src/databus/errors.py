"""The one exception tree of databus.

Every error a user can meet derives from :class:`DatabusError` and carries the data
needed to act on it (dataset, field path, topic, partition, offset) plus a readable
``__str__``. A rejected *record* is not an error: it is a :class:`~databus.wire.Rejection`
value that travels to the dead-letter topic.

The tree (every class derives from ``DatabusError``; ``retriable`` says whether trying
again may help)::

    DatabusError
    ├── ConfigurationError        a setting, the policy or a key is missing or invalid
    ├── CatalogError              an unknown dataset, an inconsistent catalog
    ├── GrantError                grant files that cannot be used (every problem listed)
    ├── BrokerError               the local broker cannot be started, stopped or reached
    ├── TopicLayoutError          an existing topic disagrees with the catalog
    ├── MissingTopicError         a topic does not exist (run ``topics apply``)
    ├── SchemaCompatibilityError  ``schemas/`` is stale or a change breaks compatibility
    ├── DecodeError               a Kafka message is not a record of its topic
    ├── StateFormatError          stored person state cannot be read
    ├── AccessDeniedError         the broker refused this user a topic or group
    ├── AccessError               the broker refused to change users or ACLs
    ├── PublishError (retriable)  Kafka did not accept a message after retries
    ├── WriterFailed (retriable)  a share partition's transaction failed or was fenced
    ├── AuditReadError            the audit trail, or a topic it is checked against, unreadable
    ├── AuditChainError           the audit trail's tail cannot be read
    ├── CheckpointError           an audit checkpoint or key cannot be used
    └── DemoError                 the demo could not run to the end
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AccessDeniedError",
    "AccessError",
    "AuditChainError",
    "AuditReadError",
    "BrokerError",
    "CatalogError",
    "CheckpointError",
    "ConfigurationError",
    "DatabusError",
    "DecodeError",
    "DemoError",
    "GrantError",
    "MissingTopicError",
    "PublishError",
    "SchemaCompatibilityError",
    "StateFormatError",
    "TopicLayoutError",
    "WriterFailed",
]


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


class AccessError(DatabusError):
    """The broker refused to change users or ACLs."""


class AuditReadError(DatabusError):
    """The audit trail, or a topic it is checked against, cannot be read."""


class GrantError(DatabusError):
    """Grant files that cannot be used; ``problems`` lists every mistake found."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)

    def __str__(self) -> str:
        count = len(self.problems)
        head = "a grant file is invalid" if count == 1 else f"{count} problems in grant files"
        return head + ":\n  " + "\n  ".join(self.problems)


class AuditChainError(DatabusError):
    """The audit trail's tail cannot be read."""


class CheckpointError(DatabusError):
    """A checkpoint or key cannot be used: missing, malformed, or its signature fails."""


class DemoError(DatabusError):
    """The demo could not run to the end."""


class StateFormatError(DatabusError):
    """Stored person state cannot be read (corrupt, or written by an unknown version)."""


class PublishError(DatabusError):
    """Kafka did not accept a message after the producer's retries."""

    retriable = True


class WriterFailed(DatabusError):
    """A batch of one partition could not be committed (it was aborted, or the producer
    was fenced); nothing of it is visible to read_committed readers."""

    retriable = True

    def __init__(self, partition: int, cause: BaseException, *, fenced: bool) -> None:
        self.partition = partition
        self.fenced = fenced
        what = (
            "the producer was fenced by another with its transactional id"
            if fenced
            else "the transaction failed"
        )
        super().__init__(f"partition {partition}: {what} ({cause!r})")
