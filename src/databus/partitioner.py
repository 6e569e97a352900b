"""Kafka's default partitioner: which partition a keyed record goes to.

Every person-keyed topic, the workers' changelog and every databus producer place a key
the way the Java client and aiokafka do (murmur2 of the key bytes, positive, modulo the
partition count), so that records about one person meet in one partition of each topic
(co-partitioning) whoever wrote them. One module, used by the publisher's batches, the
worker's store and checks, and explain.
"""

from __future__ import annotations

import struct
from functools import lru_cache

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS: dict[int, struct.Struct] = {}


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``Utils.murmur2``), as an unsigned 32-bit integer.

    The same function as ``aiokafka.partitioner.murmur2``, about twice as fast: the
    4-byte words are unpacked in C rather than assembled byte by byte.
    """
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    count = length >> 2
    words = _WORDS.get(count)
    if words is None:
        words = _WORDS[count] = struct.Struct(f"<{count}I")
    for word in words.unpack_from(data):
        k = (word * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail = length & 3
    if tail:
        base = count << 2
        if tail == 3:  # noqa: PLR2004 - the three possible tail lengths of murmur2
            h ^= data[base + 2] << 16
        if tail >= 2:  # noqa: PLR2004
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


@lru_cache(maxsize=1 << 16)
def default_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partition of a keyed message (the Java client's and aiokafka's).

    Cached: a worker asks it for the same person several times per record (the
    partition check, the store, the changelog, the derived events).
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions
