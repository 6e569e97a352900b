"""Kafka admin requests that aiokafka's admin client does not offer: ACLs and SCRAM users.

Built from aiokafka's own protocol types and sent with its client, so they share the
connection, SASL and version negotiation of every other admin call. Versions: the ACL
requests at v1 (Kafka 4 removed v0, KIP-896), the SCRAM requests at v0 (the only one,
flexible). Field layouts follow Kafka's ``clients/src/main/resources/common/message``.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Array,
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    String,
    TaggedFields,
)

#: Kafka's enum codes (``org.apache.kafka.common.acl`` / ``resource``).
RESOURCE_TYPES = {
    "any": 1,
    "topic": 2,
    "group": 3,
    "cluster": 4,
    "transactional_id": 5,
    "delegation_token": 6,
    "user": 7,
}
PATTERN_TYPES = {"any": 1, "match": 2, "literal": 3, "prefixed": 4}
OPERATIONS = {
    "any": 1,
    "all": 2,
    "read": 3,
    "write": 4,
    "create": 5,
    "delete": 6,
    "alter": 7,
    "describe": 8,
    "cluster_action": 9,
    "describe_configs": 10,
    "alter_configs": 11,
    "idempotent_write": 12,
    "create_tokens": 13,
    "describe_tokens": 14,
}
PERMISSION_ANY, PERMISSION_DENY, PERMISSION_ALLOW = 1, 2, 3
PERMISSIONS = {"any": PERMISSION_ANY, "deny": PERMISSION_DENY, "allow": PERMISSION_ALLOW}
#: The name of the one cluster resource.
CLUSTER_NAME = "kafka-cluster"
#: ``ScramMechanism`` codes.
SCRAM_MECHANISMS = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}

_ACL_ENTRY = (
    ("resource_type", Int8),
    ("resource_name", String("utf-8")),
    ("pattern_type", Int8),
    ("principal", String("utf-8")),
    ("host", String("utf-8")),
    ("operation", Int8),
    ("permission_type", Int8),
)

AclEntry: TypeAlias = tuple[int, str | None, int, str | None, str | None, int, int]
"""(resource type, name, pattern type, principal, host, operation, permission): a
binding to create, or a filter (``None`` and the ``any`` codes match everything)."""


class CreateAclsResponse_v1(Response):
    API_KEY = 30
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", Array(("error_code", Int16), ("error_message", String("utf-8")))),
    )


class CreateAclsRequest_v1(RequestStruct):
    API_KEY = 30
    API_VERSION = 1
    RESPONSE_TYPE = CreateAclsResponse_v1
    SCHEMA = Schema(("creations", Array(*_ACL_ENTRY)))


class CreateAcls(Request[CreateAclsRequest_v1]):
    """Create ACL bindings (all in one request)."""

    API_KEY = 30

    def __init__(self, creations: list[AclEntry]) -> None:
        self._creations = creations

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(self._creations)


class DescribeAclsResponse_v1(Response):
    API_KEY = 29
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", String("utf-8")),
        (
            "resources",
            Array(
                ("resource_type", Int8),
                ("resource_name", String("utf-8")),
                ("pattern_type", Int8),
                (
                    "acls",
                    Array(
                        ("principal", String("utf-8")),
                        ("host", String("utf-8")),
                        ("operation", Int8),
                        ("permission_type", Int8),
                    ),
                ),
            ),
        ),
    )


class DescribeAclsRequest_v1(RequestStruct):
    API_KEY = 29
    API_VERSION = 1
    RESPONSE_TYPE = DescribeAclsResponse_v1
    SCHEMA = Schema(*_ACL_ENTRY)


class DescribeAcls(Request[DescribeAclsRequest_v1]):
    """Every ACL binding that matches one filter."""

    API_KEY = 29

    def __init__(self, entry_filter: AclEntry) -> None:
        self._filter = entry_filter

    def build(self, request_struct_class: type[DescribeAclsRequest_v1]) -> DescribeAclsRequest_v1:
        return request_struct_class(*self._filter)


class DeleteAclsResponse_v1(Response):
    API_KEY = 31
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "filter_results",
            Array(
                ("error_code", Int16),
                ("error_message", String("utf-8")),
                (
                    "matching_acls",
                    Array(
                        ("error_code", Int16),
                        ("error_message", String("utf-8")),
                        *_ACL_ENTRY,
                    ),
                ),
            ),
        ),
    )


class DeleteAclsRequest_v1(RequestStruct):
    API_KEY = 31
    API_VERSION = 1
    RESPONSE_TYPE = DeleteAclsResponse_v1
    SCHEMA = Schema(("filters", Array(*_ACL_ENTRY)))


class DeleteAcls(Request[DeleteAclsRequest_v1]):
    """Delete the ACL bindings matching each filter."""

    API_KEY = 31

    def __init__(self, filters: list[AclEntry]) -> None:
        self._filters = filters

    def build(self, request_struct_class: type[DeleteAclsRequest_v1]) -> DeleteAclsRequest_v1:
        return request_struct_class(self._filters)


class DescribeUserScramCredentialsResponse_v0(Response):
    API_KEY = 50
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", CompactString("utf-8")),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                (
                    "credential_infos",
                    CompactArray(
                        ("mechanism", Int8),
                        ("iterations", Int32),
                        ("tags", TaggedFields),
                    ),
                ),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class DescribeUserScramCredentialsRequest_v0(RequestStruct):
    API_KEY = 50
    API_VERSION = 0
    FLEXIBLE_VERSION = True
    RESPONSE_TYPE = DescribeUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        ("users", CompactArray(("name", CompactString("utf-8")), ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


class DescribeUserScramCredentials(Request[DescribeUserScramCredentialsRequest_v0]):
    """The SCRAM credentials (mechanisms, not secrets) of every user."""

    API_KEY = 50

    def build(
        self, request_struct_class: type[DescribeUserScramCredentialsRequest_v0]
    ) -> DescribeUserScramCredentialsRequest_v0:
        return request_struct_class(None, {})  # null users: all of them


class AlterUserScramCredentialsResponse_v0(Response):
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentialsRequest_v0(RequestStruct):
    API_KEY = 51
    API_VERSION = 0
    FLEXIBLE_VERSION = True
    RESPONSE_TYPE = AlterUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("tags", TaggedFields),
            ),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


ScramUpsertion: TypeAlias = tuple[str, int, int, bytes, bytes]
"""(user, mechanism code, iterations, salt, salted password)."""


class AlterUserScramCredentials(Request[AlterUserScramCredentialsRequest_v0]):
    """Set (upsert) SCRAM credentials; the broker derives its stored keys from them."""

    API_KEY = 51

    def __init__(self, upsertions: list[ScramUpsertion]) -> None:
        self._upsertions = upsertions

    def build(
        self, request_struct_class: type[AlterUserScramCredentialsRequest_v0]
    ) -> AlterUserScramCredentialsRequest_v0:
        return request_struct_class([], [(*upsertion, {}) for upsertion in self._upsertions], {})


def as_dict(response: Response) -> dict[str, Any]:
    """A response as nested dicts (aiokafka's ``to_object``), for readable access."""
    result: dict[str, Any] = response.to_object()
    return result
