"""Reads a Kafka topic back with an independent client (confluent-kafka),
for tests/it/kafka.rs and bench/kafka.py.

    consume.py BOOTSTRAP TOPIC EXPECTED OUT [--idle SECONDS] [--patience SECONDS]
               [--ca FILE [--cert FILE --key FILE]]

Reads every partition of TOPIC from its start until EXPECTED distinct
messages (values) were read and then nothing more came for --idle seconds
(1 s; so extra messages, duplicates, are seen too), or until nothing came
for --patience seconds (30 s). Distinct, because a test that allows
duplicates reads while ringway still produces: counting duplicates would
stop the read before the last lines came. Writes one line a
message to OUT: `PARTITION<TAB>OFFSET<TAB>KEY<TAB>VALUE` (KEY `-` when the
message has none; values are NDJSON lines, which hold no newline), in the
order each partition gave them. Exits 0; the test compares. With --ca it
speaks TLS to the brokers (checking them against that CA; --cert and --key
for a client certificate).
"""

import argparse
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("expected", type=int)
    parser.add_argument("out")
    parser.add_argument("--idle", type=float, default=1.0)
    parser.add_argument("--patience", type=float, default=30.0)
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()

    config = {
        "bootstrap.servers": args.bootstrap,
        "group.id": "ringway-test-reader",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
    }
    if args.ca:
        config.update({"security.protocol": "ssl", "ssl.ca.location": args.ca})
        if args.cert:
            config.update({
                "ssl.certificate.location": args.cert,
                "ssl.key.location": args.key,
            })
    consumer = Consumer(config)
    metadata = consumer.list_topics(args.topic, timeout=30)
    topic = metadata.topics.get(args.topic)
    if topic is None or topic.error is not None:
        sys.exit(f"consume.py: topic {args.topic}: {topic.error if topic else 'missing'}")
    partitions = [TopicPartition(args.topic, p, 0) for p in sorted(topic.partitions)]
    consumer.assign(partitions)

    distinct = set()
    last = time.monotonic()
    with open(args.out, "wb") as out:
        while True:
            messages = consumer.consume(num_messages=10000, timeout=0.2)
            now = time.monotonic()
            for message in messages:
                if message.error() is not None:
                    raise KafkaException(message.error())
                key = message.key()
                out.write(b"%d\t%d\t%s\t%s\n" % (
                    message.partition(), message.offset(),
                    b"-" if key is None else key, message.value()))
                distinct.add(message.value())
            if messages:
                last = now
            idle = now - last
            if (len(distinct) >= args.expected and idle >= args.idle) or idle >= args.patience:
                break
    consumer.close()


if __name__ == "__main__":
    main()
