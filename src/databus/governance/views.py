"""Share views: what one consumer sees of one dataset under its grant.

Each grant becomes a dataset of its own, ``share.<consumer>.<dataset>``, whose record
model has only the granted fields (same types and checks as the source's, no others),
so topics, decoding and the subscriber treat it like any other dataset. The catalog
with these views added is :func:`catalog_with_views`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from databus.catalog import CATALOG, DAY_MS, Catalog, Dataset
from databus.errors import ConfigurationError
from databus.governance.grants import Grant, GrantSet, load_grants
from databus.settings import Settings

#: Consumers keep what they need in their own systems; the bus keeps a month.
SHARE_RETENTION_MS = 30 * DAY_MS
GRANTS_ENV_VAR = "DATABUS_GRANTS"


def projection_model(dataset: Dataset, fields: Iterable[str], name: str) -> type[BaseModel]:
    """A closed record model with only ``fields`` of ``dataset``'s bus model."""
    source = dataset.bus_model.model_fields
    definitions: dict[str, Any] = {f: (source[f].annotation, source[f]) for f in fields}
    model: type[BaseModel] = create_model(
        name,
        __config__=ConfigDict(extra="forbid", frozen=True),
        __doc__=f"The granted fields of {dataset.name}.",
        **definitions,
    )
    return model


def share_dataset(grant: Grant, catalog: Catalog = CATALOG) -> Dataset:
    """The dataset a grant makes: the consumer's share topic and its record model."""
    source = catalog.get(grant.dataset)
    model_name = f"{source.bus_model.__name__}For{_camel(grant.consumer)}"
    return Dataset(
        name=grant.share_topic,
        owner=source.owner,
        description=f"{source.name} for {grant.consumer}: {grant.purpose}",
        bus_model=projection_model(source, grant.fields, model_name),
        classification={f: source.classification.get(f, "internal") for f in grant.fields},
        retention_ms=SHARE_RETENTION_MS,
        level=source.level,
        shareable=False,
        schema_of=source.name,
    )


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def catalog_with_views(grants: GrantSet, catalog: Catalog = CATALOG) -> Catalog:
    """The catalog plus one share dataset per grant, active or expired (a view's topic
    outlives its grant: it still holds what was shared, until retention)."""
    return Catalog([*catalog, *(share_dataset(grant, catalog) for grant in grants)])


def default_grants_path() -> Path | None:
    """The checkout's ``deploy/grants``, if this package runs from a checkout."""
    candidate = Path(__file__).resolve().parents[3] / "deploy" / "grants"
    return candidate if candidate.is_dir() else None


def grants_path(settings: Settings) -> Path | None:
    """Where the grants are: ``DATABUS_GRANTS``, else the checkout's ``deploy/grants``."""
    if settings.grants is not None:
        if not settings.grants.exists():
            raise ConfigurationError(
                f"{GRANTS_ENV_VAR}={settings.grants}: no such grant file or directory"
            )
        return settings.grants
    return default_grants_path()


def configured_grants(settings: Settings, catalog: Catalog = CATALOG) -> GrantSet:
    """The grants the settings point at; none when there is no grant file at all."""
    path = grants_path(settings)
    return GrantSet() if path is None else load_grants(path, catalog)


def configured_catalog(settings: Settings, catalog: Catalog = CATALOG) -> Catalog:
    """The catalog with the share views of the configured grants."""
    return catalog_with_views(configured_grants(settings, catalog), catalog)
