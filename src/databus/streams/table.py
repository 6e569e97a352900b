"""A person-keyed Faust table whose writes always go to the key's own partition.

The decision agent handles events in batches, and Faust normally files a table write
under the partition of the "current event" — inside a batch, an arbitrary one. With
``use_partitioner=True`` the changelog goes to the right partition, but Faust's RocksDB
store still puts the key into the local database of the current event's partition,
which a later rebalance can drop while the key's partition stays assigned. Here both
the changelog partition and the local database follow the key: murmur2 of the raw
``person_ref`` bytes, as every producer of the co-partitioned topics uses.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP

from databus.partitioner import default_partition
from databus.streams.admission import RESERVED_PREFIX

#: The store URL scheme registered (``faust.stores`` entry point) for :class:`PersonStore`.
STORE_SCHEME = "databus-rocksdb"


def key_partition(table: Any, key: bytes) -> int:
    """The partition of a person's key in ``table`` (changelog and local database)."""
    partitions: int = table.partitions or table.app.conf.topic_partitions
    return default_partition(key, partitions)


class PersonTable(faust.Table[bytes, bytes]):
    """Changelog writes go to the partition of the key, computed without the producer."""

    def partition_for_key(self, key: Any) -> int:
        return key_partition(self, key)


class PersonStore(RocksDBStore):
    """Faust's RocksDB store, but a key lives in the database of its own partition.

    Reads go straight to that database too: Faust would otherwise look the key up in a
    1,000-entry index and, past it, probe every partition's database.
    """

    def get_in(self, partition: int, key: bytes) -> bytes | None:
        """The value of ``key``, whose partition the caller has computed."""
        value: bytes | None = self._db_for_partition(partition).get(key)
        return value

    def put_in(self, partition: int, key: bytes, value: bytes) -> None:
        """Store ``key`` (of ``partition``) locally, without a changelog write."""
        self._db_for_partition(partition).put(key, value)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._persons: dict[int, int] = {}
        """Persons per partition this worker holds as active (not standby): counted
        once its recovery completes, then kept by :meth:`add_persons`."""

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        await super().on_recovery_completed(active_tps, standby_tps)
        mine = self.table.changelog_topic.topics
        persons = {}
        for partition in sorted({tp.partition for tp in active_tps if tp.topic in mine}):
            db = self._db_for_partition(partition)
            # One pass over the keys (RocksDB's estimate-num-keys counts every version
            # still in a memtable: 99,299 "persons" for 20,000 residents), on the event
            # loop: nothing is processed before recovery completes anyway, and counting
            # in a thread (asyncio.to_thread) hung the recovery after a restart.
            persons[partition] = self._count_persons(db)
        # Exactly the active partitions: one that became a standby copy is not revoked.
        self._persons = persons

    def revoke_partitions(self, table: Any, tps: set[TP]) -> None:
        super().revoke_partitions(table, tps)
        for tp in tps:
            if tp.topic in table.changelog_topic.topics:
                self._persons.pop(tp.partition, None)

    def _count_persons(self, db: Any) -> int:
        return sum(1 for key in self._visible_keys(db) if not key.startswith(RESERVED_PREFIX))

    def add_persons(self, partition: int, added: int) -> None:
        """``added`` persons were stored in ``partition`` for the first time."""
        if partition in self._persons:
            self._persons[partition] += added

    def persons_held(self) -> int:
        """Persons in the partitions this worker holds as active."""
        return sum(self._persons.values())

    def _own_db(self, key: bytes) -> Any:
        return self._db_for_partition(key_partition(self.table, key))

    def _set(self, key: bytes, value: bytes | None) -> None:
        self._own_db(key).put(key, value)

    def _get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._own_db(key).get(key)
        return value

    def _contains(self, key: bytes) -> bool:
        return self._own_db(key).get(key) is not None

    def _dbs_for_key(self, key: bytes) -> list[Any]:
        return [self._own_db(key)]
