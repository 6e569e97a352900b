"""JSON Schemas of every dataset, generated from the catalog, and their compatibility rule.

``plan_export`` compares a ``schemas/`` directory with the catalog, ``apply_export``
writes it (refusing changes that are not backward compatible), and ``check_backward``
is the rule itself (``docs/schemas.md``).
"""

from databus.schemas.compat import Incompatibility, check_backward
from databus.schemas.export import (
    ExportPlan,
    FileStatus,
    SchemaFile,
    apply_export,
    dataset_schema,
    plan_export,
    schema_files,
)

__all__ = [
    "ExportPlan",
    "FileStatus",
    "Incompatibility",
    "SchemaFile",
    "apply_export",
    "check_backward",
    "dataset_schema",
    "plan_export",
    "schema_files",
]
