"""A small fleet for pattern tests: one loaded producer and a consumer group, each client on its own
thread, every message counted by sequence number (sent = acknowledged by a cluster, seen = handed to the
application)."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message

from kafkashim import Consumer, CutoverEvent, Producer
from tests.conftest import ControlFile
from tests.integration.kafka_io import encode


@dataclass
class Tally:
    sent: Counter[int] = field(default_factory=Counter)
    """Sequence number → times a cluster acknowledged it."""
    seen: Counter[int] = field(default_factory=Counter)
    """Sequence number → times the group handed it to the application."""
    where_sent: dict[int, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    events: list[CutoverEvent] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    first_seen: list[int] = field(default_factory=list)
    """Sequence numbers in the order the group first handed each to the application."""
    sent_at: list[float] = field(default_factory=list)
    """`time.monotonic` of each acknowledgement, in order."""
    seen_at: list[float] = field(default_factory=list)
    """`time.monotonic` of each first hand-over to the application, in order."""

    def lost(self) -> list[int]:
        with self.lock:
            return sorted(set(self.sent) - set(self.seen))

    def duplicated(self) -> int:
        with self.lock:
            return sum(n - 1 for n in self.seen.values() if n > 1)

    def sent_twice(self) -> int:
        with self.lock:
            return sum(n - 1 for n in self.sent.values() if n > 1)

    def acknowledged_count(self) -> int:
        """Acknowledgements so far (under ``lock``: the delivery thread adds to ``sent`` while a test waits, and
        iterating a dict another thread grows raises)."""
        with self.lock:
            return sum(self.sent.values())

    def clusters_written(self) -> Counter[str]:
        """Cluster → messages it acknowledged last (under ``lock``, as ``acknowledged_count``)."""
        with self.lock:
            return Counter(self.where_sent.values())

    def see(self, seq: int) -> None:
        """The group handed ``seq`` to the application (call under ``lock``)."""
        self.seen[seq] += 1
        if self.seen[seq] == 1:
            self.first_seen.append(seq)
            self.seen_at.append(time.monotonic())

    def acknowledged(self, seq: int, cluster: str) -> None:
        """A cluster acknowledged ``seq`` (call under ``lock``)."""
        self.sent[seq] += 1
        self.where_sent[seq] = cluster
        self.sent_at.append(time.monotonic())

    def reordered(self) -> int:
        """Messages the group first handed over after a later message of the same key (the key is
        ``k{seq % KEYS}`` in every pattern test): per-key order broken, duplicates left aside."""
        with self.lock:
            latest: dict[int, int] = {}
            out = 0
            for seq in self.first_seen:
                key = seq % KEYS
                if seq < latest.get(key, -1):
                    out += 1
                else:
                    latest[key] = seq
            return out

    @staticmethod
    def _longest_gap_ms(times: list[float]) -> float:
        return round(max((b - a for a, b in itertools.pairwise(times)), default=0.0) * 1000, 1)

    def write_downtime_ms(self) -> float:
        """The longest time between two acknowledgements: under steady load (400 msg/s, one every 2.5 ms) it is
        the longest time writes stood still, a flip's hand-off or a pause."""
        with self.lock:
            return self._longest_gap_ms(self.sent_at)

    def read_downtime_ms(self) -> float:
        """The longest time between two messages first handed to the group."""
        with self.lock:
            return self._longest_gap_ms(self.seen_at)

    def report(self, pattern: str) -> dict[str, object]:
        """The counts docs/patterns-evidence.md shows, printed as one line (``pytest -s`` to see it)."""
        figures: dict[str, object] = {
            "pattern": pattern,
            "sent": len(self.sent),
            "lost": len(self.lost()),
            "duplicated": self.duplicated(),
            "reordered": self.reordered(),
            "write_downtime_ms": self.write_downtime_ms(),
            "read_downtime_ms": self.read_downtime_ms(),
        }
        print(f"\nPATTERN-EVIDENCE {json.dumps(figures)}")
        return figures


KEYS = 12
"""How many keys the pattern tests' producers spread their messages over (``k{seq % KEYS}``)."""


class Fleet:
    """``producers`` loaded producers and ``consumers`` members of one group on ``control``."""

    def __init__(
        self,
        control: ControlFile,
        topic: str,
        *,
        consumers: int = 2,
        rate: float = 400.0,
        consumer_conf: dict[str, Any] | None = None,
        producer_conf: dict[str, Any] | None = None,
        tally: Tally | None = None,
        group: str | None = None,
        on_assign: bool = False,
    ) -> None:
        """``on_assign``: the members subscribe with an ``on_assign`` callback (the old consumer then leaves on
        the application's thread at a cutover); by default with none, as most applications do (it then
        commits and leaves in the background)."""
        self.control, self.topic, self.rate = control, topic, rate
        self.on_assign = on_assign
        self.tally = tally or Tally()
        self.group = group or f"g-{uuid.uuid4().hex[:8]}"
        self._stop_load = threading.Event()
        self._stop_consumers = threading.Event()
        self._formed = threading.Event()
        self.producer = Producer(
            {
                "kafkashim.source": control.url,
                "linger.ms": 2,
                "on_delivery": self._delivered,
                "kafkashim.cutover.buffer.max.messages": 1_000_000,
                **(producer_conf or {}),
            }
        )
        self.producer.add_cutover_listener(self.tally.events.append)
        self.consumers: list[Consumer] = []
        for _ in range(consumers):
            c = Consumer(
                {
                    "kafkashim.source": control.url,
                    "group.id": self.group,
                    "auto.commit.interval.ms": 200,
                    "auto.offset.reset": "earliest",
                    "kafkashim.cutover.drain.quiet.ms": 300,
                    **(consumer_conf or {}),
                }
            )
            c.add_cutover_listener(self.tally.events.append)
            self.consumers.append(c)
        self._threads: list[threading.Thread] = []
        self.next_seq = 0
        self.assigned: dict[int, int] = {}

    # ------------------------------------------------------------------------------------ running
    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            with self.tally.lock:
                self.tally.acknowledged(int(msg.value() or b"-1"), self.producer.cluster)

    def _load(self) -> None:
        try:
            interval = 1.0 / self.rate
            next_at = time.monotonic()
            while not self._stop_load.is_set():
                self.producer.produce(self.topic, encode(self.next_seq), key=f"k{self.next_seq % KEYS}")
                self.next_seq += 1
                self.producer.poll(0)
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        except BaseException as exc:
            self.tally.errors.append(exc)

    def _consume(self, c: Consumer) -> None:
        # Only this thread calls the consumer: librdkafka calls such as assignment() from another thread
        # while this one polls can block for a long time.
        def assigned(_c: object, partitions: list[Any]) -> None:
            self.assigned[id(c)] = len(partitions)

        try:
            if self.on_assign:
                c.subscribe([self.topic], on_assign=assigned)
            else:
                c.subscribe([self.topic])
            while not self._stop_consumers.is_set():
                if not self.on_assign and not self._formed.is_set():
                    self.assigned[id(c)] = len(c.assignment())  # this thread's own call, while the group forms
                msg = c.poll(0.1)
                if msg is not None and msg.error() is None:
                    with self.tally.lock:
                        self.tally.see(int(msg.value() or b"-1"))
            c.close()
        except BaseException as exc:
            self.tally.errors.append(exc)

    def start(self, load: bool = True) -> None:
        for c in self.consumers:
            t = threading.Thread(target=self._consume, args=(c,), daemon=True)
            t.start()
            self._threads.append(t)
        wait_for(lambda: sum(self.assigned.values()) >= 3, "the group to form", 60)
        self._formed.set()
        if load:
            self._load_thread = threading.Thread(target=self._load, daemon=True)
            self._load_thread.start()

    def stop_load(self) -> None:
        self._stop_load.set()
        if hasattr(self, "_load_thread"):
            self._load_thread.join(30)
        assert self.producer.flush(60) == 0

    def settle(self, timeout_s: float = 120.0) -> None:
        """Wait until the group has seen everything that was sent (or the timeout), then stop it."""
        deadline = time.monotonic() + timeout_s
        while self.tally.lost() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # duplicates arrive late, if at all
        self._stop_consumers.set()
        for t in self._threads:
            t.join(60)
        self.producer.close()
        assert not self.tally.errors, self.tally.errors


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
