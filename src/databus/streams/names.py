"""Names shared by the worker and its readers, without importing Faust."""

#: The Faust app id: the consumer group and the prefix of the worker's internal topics.
APP_ID = "databus-decisions"
#: The table of per-person state (changelog topic ``<app id>-<table>-changelog``).
STATE_TABLE = "person-state"


def changelog_topic(app_id: str = APP_ID) -> str:
    """Faust's name for the state table's changelog topic."""
    return f"{app_id}-{STATE_TABLE}-changelog"
