"""Delivery-report routing and held calls, without a broker."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError

from kafkashim.cutover.delivery import HeldCalls, Route, delivery_router, routed_config


class FakeMessage:
    def __init__(self, value: bytes) -> None:
        self._value = value

    def value(self) -> bytes:
        return self._value


def test_outside_a_hand_off_every_report_reaches_the_application() -> None:
    seen: list[Any] = []
    route = Route()
    dr = delivery_router(lambda err, msg: seen.append((err, msg.value())), route)
    dr(None, FakeMessage(b"ok"))
    dr(KafkaError(KafkaError._PURGE_QUEUE), FakeMessage(b"purged"))
    assert [v for _, v in seen] == [b"ok", b"purged"]


def test_during_a_hand_off_unconfirmed_messages_are_salvaged_not_reported() -> None:
    seen: list[Any] = []
    route = Route(salvage=[])
    dr = delivery_router(lambda err, msg: seen.append(msg.value()), route)
    dr(None, FakeMessage(b"ok"))
    dr(KafkaError(KafkaError._PURGE_QUEUE), FakeMessage(b"queued"))
    dr(KafkaError(KafkaError._PURGE_INFLIGHT), FakeMessage(b"in-flight"))
    dr(KafkaError(KafkaError._MSG_TIMED_OUT), FakeMessage(b"timed-out"))
    dr(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED), FakeMessage(b"denied"))
    assert seen == [b"ok", b"denied"]  # a real failure is the application's to see
    assert [m.value() for m in route.salvage or []] == [b"queued", b"in-flight", b"timed-out"]


def test_without_an_application_callback_only_failures_are_routed() -> None:
    route = Route()
    conf = routed_config({"linger.ms": 5}, route)
    assert conf["delivery.report.only.error"] is True
    assert callable(conf["on_delivery"])
    conf_with_cb = routed_config({"on_delivery": print}, route)
    assert "delivery.report.only.error" not in conf_with_cb
    assert conf_with_cb["on_delivery"] is not print


class RecordingHandle:
    def __init__(self, full_times: int = 0) -> None:
        self.produced: list[tuple[Any, ...]] = []
        self.full_times = full_times
        self.polls = 0

    def produce(self, *args: Any, **kwargs: Any) -> None:
        if self.full_times:
            self.full_times -= 1
            raise BufferError("Local: Queue full")
        self.produced.append((args, tuple(sorted(kwargs.items()))))

    def poll(self, timeout: float) -> int:
        self.polls += 1
        return 0


def test_held_calls_are_bounded_like_a_full_librdkafka_queue() -> None:
    held = HeldCalls(limit=2)
    assert held.hold(("t",), {}) is False  # not open: the caller produces directly
    held.open()
    assert held.hold(("t", b"1"), {}) is True
    assert held.hold(("t", b"2"), {"key": b"k"}) is True
    with pytest.raises(BufferError, match="Local: Queue full"):
        held.hold(("t", b"3"), {})
    assert len(held) == 2


def test_held_calls_are_released_in_order_and_the_switch_is_atomic() -> None:
    held = HeldCalls(limit=10)
    held.open()
    for i in range(3):
        held.hold(("t", str(i).encode()), {})
    handle = RecordingHandle(full_times=2)  # the new queue is momentarily full: wait, never drop
    switched: list[bool] = []
    assert held.release_into(handle, lambda: switched.append(True)) == 3  # type: ignore[arg-type]
    assert [args[1] for args, _ in handle.produced] == [b"0", b"1", b"2"]
    assert handle.polls == 2
    assert switched == [True]
    assert held.hold(("t", b"late"), {}) is False


def _unreachable_route() -> Route:
    import confluent_kafka

    route = Route()
    conf = routed_config({"bootstrap.servers": "127.0.0.1:1", "log_level": 0, "message.timeout.ms": 300_000}, route)
    route.producer = confluent_kafka.Producer(conf)
    for i in range(25):
        route.producer.produce("t", key=b"k", value=b"%d" % i)
    return route


def test_a_dead_origin_is_salvaged_after_the_stall_window_not_the_flush_timeout() -> None:
    from kafkashim.cutover.delivery import flush_or_salvage

    route = _unreachable_route()
    probes: list[bool] = []

    def probe() -> bool:
        probes.append(False)
        return False  # nobody answers

    salvage = flush_or_salvage(route, flush_timeout_s=300.0, stall_s=0.2, probe=probe)
    assert salvage.origin_unreachable is True
    assert [m.value() for m in salvage.messages] == [b"%d" % i for i in range(25)]
    # every one may have been written by the dying origin (a request it never answered is retried from the
    # queue and purged as queued): all count as possible duplicates
    assert salvage.in_flight == 25 and len(route.handle) == 0
    assert probes == [False]  # probed once, after the first stall window
    route.handle.close()


def test_a_live_but_slow_origin_gets_the_whole_flush_timeout() -> None:
    from kafkashim.cutover.delivery import flush_or_salvage

    route = _unreachable_route()
    probes: list[bool] = []

    def probe() -> bool:
        probes.append(True)
        return True  # answers metadata, just confirms nothing yet

    salvage = flush_or_salvage(route, flush_timeout_s=1.0, stall_s=0.2, probe=probe)
    assert salvage.origin_unreachable is False
    assert len(salvage.messages) == 25
    assert len(probes) >= 3  # re-probed every stall window until the timeout
    route.handle.close()


def test_the_default_probe_is_a_metadata_round_trip() -> None:
    from kafkashim.cutover.delivery import answers

    route = _unreachable_route()
    assert answers(route.handle, timeout_s=0.2) is False
    route.handle.purge()
    route.handle.close()
