"""The Kafka sink's partitioner gives the partition every other Kafka client gives a key.

librdkafka's ``murmur2_random`` is checked against a real broker in
``tests/integration/test_kafka_sink.py``; here, Java's own test vectors and aiokafka's
byte-at-a-time implementation.
"""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2 as aiokafka_murmur2
from hypothesis import given, strategies as st

from notifier.sinks.partitioner import murmur2, partition_for


# org.apache.kafka.common.utils.UtilsTest#testMurmur2 (Java's signed ints)
@pytest.mark.parametrize(
    ("key", "java"),
    [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_matches_the_java_client(key: bytes, java: int) -> None:
    """The same 32 bits as Kafka's Utils.murmur2."""
    assert murmur2(key) == java & 0xFFFFFFFF


@given(st.binary(max_size=300))
def test_murmur2_matches_aiokafka(key: bytes) -> None:
    """Any key, any length (every tail of 0-3 bytes): aiokafka's hash."""
    assert murmur2(key) == aiokafka_murmur2(key) & 0xFFFFFFFF


@given(st.binary(max_size=80), st.integers(min_value=1, max_value=64))
def test_partition_matches_aiokafkas_default_partitioner(key: bytes, count: int) -> None:
    """The partition aiokafka's default partitioner would have chosen for the key."""
    partitions = list(range(count))
    assert partition_for(key, partitions) == DefaultPartitioner()(key, partitions, partitions)
