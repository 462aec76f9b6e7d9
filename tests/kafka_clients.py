"""Kafka clients built the way an app builds them from its injected config vars (KAFKA_URL,
KAFKA_TRUSTED_CERT, KAFKA_CLIENT_CERT, KAFKA_CLIENT_CERT_KEY): for tests that produce and consume."""
from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer


def client_config(config: dict[str, str], **extra: Any) -> dict[str, Any]:
    """What an app builds from its config vars: PEMs in memory, broker hostnames verified."""
    return {"bootstrap.servers": config["KAFKA_URL"].replace("kafka+ssl://", ""),
            "security.protocol": "ssl", "ssl.ca.pem": config["KAFKA_TRUSTED_CERT"],
            "ssl.certificate.pem": config["KAFKA_CLIENT_CERT"], "ssl.key.pem": config["KAFKA_CLIENT_CERT_KEY"],
            "ssl.endpoint.identification.algorithm": "https", "log_level": 0, **extra}


def produce(config: dict[str, str], topic: str, value: bytes, timeout_ms: int = 10000) -> KafkaError | None:
    """Produce one message; None when delivered, else the delivery error."""
    errors: list[KafkaError | None] = []
    producer = Producer(client_config(config, **{"message.timeout.ms": timeout_ms}))
    producer.produce(topic, value, on_delivery=lambda error, _message: errors.append(error))
    producer.flush(15)
    assert errors, "no delivery report within 15 s"
    return errors[0]


def consume(config: dict[str, str], topic: str, group: str, timeout: float = 20.0) -> bytes | KafkaError:
    """The first message of `topic` read in consumer group `group`, or the first error."""
    consumer = Consumer(client_config(config, **{"group.id": group, "auto.offset.reset": "earliest",
                                                 "session.timeout.ms": 6000}))
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    continue
                return message.error()
            return message.value()
        raise AssertionError(f"nothing read from {topic} within {timeout} s")
    finally:
        consumer.close()
