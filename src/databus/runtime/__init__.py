"""What both workers stand on: per-input-partition transactional writers
(:mod:`databus.runtime.transactions`). The murmur2 partitioner every producer of the
co-partitioned topics uses is :mod:`databus.partitioner`; the private library names the
workers need are :mod:`databus.internals`."""
