"""The drain's census and its decisions (kafkashim.cutover.writers, kafkashim.cutover.drain): pure."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kafkashim.config import QUIET_AUTO, split_config
from kafkashim.cutover.census import FLEET_WAIT_S, WriterCensus
from kafkashim.cutover.drain import SETTLE_ROUNDS, SETTLE_S, Drain, Step, quiet_s
from kafkashim.cutover.writers import Census, Verdict, WriterFacts, verdict
from kafkashim.errors import ConfigurationError


def writer(**kw: object) -> WriterFacts:
    base: dict[str, object] = {"name": "p", "cluster": "origin", "epoch": 7, "state": "steady"}
    return WriterFacts(**{**base, **kw})  # type: ignore[arg-type]


def test_no_writer_means_left() -> None:
    assert verdict("origin", 7, {"t"}, []) == Verdict(Census.LEFT)


def test_a_writer_that_moved_and_settled_elsewhere_has_left() -> None:
    assert verdict("origin", 7, {"t"}, [writer(cluster="dest")]).census is Census.LEFT


def test_a_writer_elsewhere_mid_hand_off_has_left_the_origin() -> None:
    # A producer's hand-off flushes the old cluster before it switches: once its engine says "dest", nothing
    # more goes to "origin", whatever its phase.
    assert verdict("origin", 7, {"t"}, [writer(cluster="dest", state="joining")]).census is Census.LEFT
    assert verdict("origin", 7, {"t"}, [writer(cluster="z", state="preparing", target="dest")]).census is Census.LEFT


def test_a_writer_moving_to_the_cluster_is_waited_for() -> None:
    # A flapping key: it is still on its way to "origin" under an older document, and writes there once it
    # switches, before it follows the newer one away again.
    got = verdict("origin", 7, {"t"}, [writer(cluster="dest", state="handing_off", target="origin", drained=True)])
    assert got == Verdict(Census.WAITING, ("p",))


@pytest.mark.parametrize("state", ["preparing", "handing_off", "draining"])
def test_a_writer_still_on_the_cluster_mid_hand_off_is_waited_for_until_it_sends_nothing(state: str) -> None:
    got = verdict("origin", 7, {"t"}, [writer(state=state, name="orders", target="dest")])
    assert got == Verdict(Census.WAITING, ("orders",))
    # Armed with an empty queue and no transaction open: its next produce() runs the hand-off first.
    assert verdict("origin", 7, {"t"}, [writer(state=state, target="dest", drained=True)]).census is Census.LEFT


def test_a_stale_entry_of_an_earlier_move_is_waited_for() -> None:
    # Facts are given under the document a writer follows (mid-move: the one it moves for). An entry left from
    # a move under document 6 (armed toward "z", drained) while the producer already took 7 and writes to the
    # origin again: behind, so waited for.
    stale = writer(state="handing_off", epoch=6, target="z", drained=True)
    assert verdict("origin", 7, {"t"}, [stale]).census is Census.WAITING
    assert verdict("origin", 7, {"t"}, [writer(state="handing_off", target="dest", drained=True)]).census is (
        Census.LEFT
    )


def test_a_writer_that_has_not_applied_the_document_yet_is_waited_for() -> None:
    assert verdict("origin", 7, {"t"}, [writer(epoch=6)]).census is Census.WAITING
    assert verdict("origin", 7, {"t"}, [writer(epoch=8)]).census is Census.WAITING  # ahead: a flip back


def test_a_writer_that_applied_the_document_and_stays_active_stays() -> None:
    assert verdict("origin", 7, {"t"}, [writer(name="a")]) == Verdict(Census.STAYING, ("a",))


def test_waiting_wins_over_staying() -> None:
    got = verdict("origin", 7, None, [writer(name="a"), writer(name="b", epoch=6)])
    assert got == Verdict(Census.WAITING, ("b",))


def test_a_paused_writer_has_left_once_it_sends_nothing() -> None:
    assert verdict("origin", 7, {"t"}, [writer(mode="paused", drained=False)]).census is Census.WAITING
    assert verdict("origin", 7, {"t"}, [writer(mode="paused", drained=True)]).census is Census.LEFT
    assert verdict("origin", 7, {"t"}, [writer(mode="standby", drained=True)]).census is Census.LEFT


def test_settling_writers_count_wherever_they_are_now() -> None:
    # A transactional producer that committed and switched at once is on "dest" by the census's next check,
    # while its commit markers may still be on their way to "origin": the end offsets must settle.
    assert verdict("origin", 7, {"t"}, [writer(cluster="dest", settles=True)]).settles is True
    assert verdict("origin", 7, {"t"}, [writer(mode="paused", drained=True, settles=True)]).settles is True
    assert verdict("origin", 7, {"t"}, [writer(cluster="dest")]).settles is False
    assert verdict("origin", 7, {"t"}, [writer(cluster="dest", settles=True, state="closed")]).settles is False


def test_topics_filter_only_writers_that_stay() -> None:
    other = writer(topics=frozenset({"other"}))
    assert verdict("origin", 7, {"t"}, [other]).census is Census.LEFT
    assert verdict("origin", 7, None, [other]).census is Census.STAYING  # a pattern subscription: any topic
    assert verdict("origin", 7, {"t"}, [writer(topics=None)]).census is Census.STAYING
    assert verdict("origin", 7, {"t"}, [writer(topics=frozenset({"t", "u"}))]).census is Census.STAYING


def test_observed_topics_never_hide_a_writer_that_may_still_write() -> None:
    # Topics are sampled (every kafkashim.registry.topics.interval.ms): a producer's first message to "t" can
    # be in its queue while its topics still say "other".
    other = frozenset({"other"})
    assert verdict("origin", 7, {"t"}, [writer(epoch=6, topics=other)]).census is Census.WAITING
    assert verdict("origin", 7, {"t"}, [writer(state="handing_off", target="dest", topics=other)]).census is (
        Census.WAITING
    )
    assert verdict("origin", 7, {"t"}, [writer(cluster="dest", target="origin", topics=other)]).census is (
        Census.WAITING
    )


def test_a_writer_elsewhere_that_has_not_applied_the_document_is_waited_for() -> None:
    # Its facts predate the document (a registry entry written before a flip back to "origin", rate-limited):
    # where it is by now is not known.
    assert verdict("origin", 7, {"t"}, [writer(cluster="dest", epoch=6)]) == Verdict(Census.WAITING, ("p",))
    assert verdict("origin", 7, {"t"}, [writer(cluster="dest", epoch=8)]).census is Census.LEFT
    # So is one that said it sends nothing under an older document (it may have resumed, or rolled back).
    stale_pause = writer(mode="paused", drained=True, epoch=6)
    assert verdict("origin", 7, {"t"}, [stale_pause]).census is Census.WAITING


def test_closed_writers_do_not_count() -> None:
    assert verdict("origin", 7, {"t"}, [writer(state="closed", epoch=1)]).census is Census.LEFT


def test_quiet_window_auto_is_zero_only_with_the_fleet_census() -> None:
    assert quiet_s(QUIET_AUTO, fleet=True, staying=False) == 0.0
    assert quiet_s(QUIET_AUTO, fleet=False, staying=False) == 1.5
    assert quiet_s(QUIET_AUTO, fleet=True, staying=True) == 1.5
    assert quiet_s(300, fleet=True, staying=False) == 0.3


def test_quiet_setting_parses_auto_and_milliseconds() -> None:
    settings, _ = split_config({"kafkashim.source": "file:///x", "kafkashim.cutover.drain.quiet.ms": "auto"}, {})
    assert settings.cutover_drain_quiet_ms == QUIET_AUTO
    settings, _ = split_config({"kafkashim.source": "file:///x", "kafkashim.cutover.drain.quiet.ms": "20"}, {})
    assert settings.cutover_drain_quiet_ms == 20
    with pytest.raises(ConfigurationError, match=r"drain\.quiet\.ms"):
        split_config({"kafkashim.source": "file:///x", "kafkashim.cutover.drain.quiet.ms": "-1"}, {})


LEFT = Verdict(Census.LEFT)
KEYS = {("t", 0), ("t", 1)}


def test_drain_reads_while_writers_may_write_or_before_the_first_assignment() -> None:
    d = Drain(started=0.0, deadline=60.0, last_message_at=0.0)
    assert d.decide(1.0, True, Verdict(Census.WAITING, ("p",)), 0.0, KEYS) is Step.READ
    assert d.decide(1.0, False, LEFT, 0.0, KEYS) is Step.READ


def test_drain_asks_for_end_offsets_once_the_writers_left_then_compares() -> None:
    d = Drain(started=0.0, deadline=60.0, last_message_at=0.5)
    assert d.decide(1.0, True, LEFT, 0.0, KEYS) is Step.FETCH_ENDS
    d.got_ends(1.0, {("t", 0): 10, ("t", 1): 4}, KEYS)
    d.last_message_at = 1.1  # read towards the ends: no need to ask again (no writer it cannot see)
    assert d.decide(1.2, True, LEFT, 0.0, KEYS) is Step.CHECK_LAG
    # A partition assigned by a rebalance meanwhile has no end offset yet.
    assert d.decide(1.3, True, LEFT, 0.0, {*KEYS, ("t", 2)}) is Step.FETCH_ENDS


def test_drain_with_a_quiet_window_asks_again_after_a_message_came() -> None:
    d = Drain(started=0.0, deadline=60.0, last_message_at=0.0)
    assert d.decide(0.1, True, LEFT, 0.3, KEYS) is Step.READ
    assert d.decide(0.4, True, LEFT, 0.3, KEYS) is Step.FETCH_ENDS
    d.got_ends(0.4, {("t", 0): 1, ("t", 1): 1}, KEYS)
    assert d.decide(0.5, True, LEFT, 0.3, KEYS) is Step.CHECK_LAG
    d.last_message_at = 0.6  # an unseen writer wrote: wait for quiet again, then ask the brokers again
    assert d.decide(0.7, True, LEFT, 0.3, KEYS) is Step.READ
    assert d.decide(1.0, True, LEFT, 0.3, KEYS) is Step.FETCH_ENDS


def test_end_offsets_read_before_a_writer_came_back_are_discarded() -> None:
    d = Drain(started=0.0, deadline=60.0, last_message_at=0.0)
    assert d.decide(1.0, True, LEFT, 0.0, KEYS) is Step.FETCH_ENDS
    d.got_ends(1.0, {("t", 0): 10, ("t", 1): 4}, KEYS)
    assert d.decide(1.1, True, Verdict(Census.WAITING, ("late",)), 0.0, KEYS) is Step.READ
    assert d.decide(1.2, True, LEFT, 0.0, KEYS) is Step.FETCH_ENDS


def test_end_offsets_are_discarded_when_the_writers_changed_between_two_checks() -> None:
    # A writer that came back to the cluster and left it again between two checks: the census says "left"
    # both times, but the writers it saw are not the same (another epoch, another cluster).
    before = verdict("origin", 7, {"t"}, [writer(mode="paused", drained=True)])
    after = verdict("origin", 7, {"t"}, [writer(mode="paused", drained=True, epoch=8)])
    assert before == after and before.generation != after.generation
    d = Drain(started=0.0, deadline=60.0, last_message_at=0.0)
    assert d.decide(1.0, True, before, 0.0, KEYS) is Step.FETCH_ENDS
    d.got_ends(1.0, {("t", 0): 10, ("t", 1): 4}, KEYS)
    assert d.decide(1.1, True, before, 0.0, KEYS) is Step.CHECK_LAG
    assert d.decide(1.2, True, after, 0.0, KEYS) is Step.FETCH_ENDS
    assert not d.ends


def test_writers_far_away_do_not_change_the_generation() -> None:
    # A fleet's churn elsewhere (rolling restarts) must not keep the end offsets from settling.
    here = writer(mode="paused", drained=True)
    quiet = verdict("origin", 7, {"t"}, [here, writer(name="far", cluster="dest")])
    churn = verdict("origin", 7, {"t"}, [here, writer(name="far", cluster="dest", epoch=9)])
    assert quiet.generation == churn.generation


def test_a_partial_answer_replaces_the_end_offsets_and_is_asked_again() -> None:
    d = Drain(started=0.0, deadline=60.0, last_message_at=0.0)
    d.got_ends(1.0, {("t", 0): 10, ("t", 1): 4}, KEYS)
    d.ends_failures = 2
    d.got_ends(2.0, {("t", 0): 12}, KEYS)  # ("t", 1) not answered: its older end is not kept
    assert d.ends == {("t", 0): 12} and d.ends_failures == 0
    assert d.decide(2.1, True, LEFT, 0.0, KEYS) is Step.FETCH_ENDS


def test_settling_writers_need_two_agreeing_reads_of_the_end_offsets() -> None:
    settling = Verdict(Census.LEFT, (), settles=True)
    d = Drain(started=0.0, deadline=60.0, last_message_at=0.0)
    assert d.decide(1.0, True, settling, 0.0, KEYS) is Step.FETCH_ENDS
    d.got_ends(1.0, {("t", 0): 10, ("t", 1): 4}, KEYS)
    assert d.decide(1.05, True, settling, 0.0, KEYS) is Step.READ
    assert d.decide(1.0 + SETTLE_S, True, settling, 0.0, KEYS) is Step.FETCH_ENDS
    d.got_ends(1.0 + SETTLE_S, {("t", 0): 12, ("t", 1): 4}, KEYS)  # the commit markers landed meanwhile
    assert not d.settled
    assert d.decide(1.0 + 2.5 * SETTLE_S, True, settling, 0.0, KEYS) is Step.FETCH_ENDS
    d.got_ends(1.0 + 2.5 * SETTLE_S, {("t", 0): 12, ("t", 1): 4}, KEYS)
    assert d.settled
    assert d.decide(1.0 + 2.5 * SETTLE_S, True, settling, 0.0, KEYS) is Step.CHECK_LAG


def test_end_offsets_read_while_a_writer_stayed_are_discarded_once_it_left() -> None:
    staying = Verdict(Census.STAYING, ("p",))
    d = Drain(started=0.0, deadline=60.0, last_message_at=0.0)
    assert d.decide(2.0, True, staying, 1.5, KEYS) is Step.FETCH_ENDS
    d.got_ends(2.0, {("t", 0): 10, ("t", 1): 4}, KEYS)
    # It wrote again, then left (closed, paused, moved): the quiet window drops to 0 with the fleet view.
    assert d.decide(3.0, True, LEFT, 0.0, KEYS) is Step.FETCH_ENDS


def test_settling_needs_complete_reads_and_gives_up_after_its_rounds() -> None:
    settling = Verdict(Census.LEFT, (), settles=True)
    d = Drain(started=0.0, deadline=60.0, last_message_at=0.0)
    assert d.decide(1.0, True, settling, 0.0, KEYS) is Step.FETCH_ENDS
    d.got_ends(1.0, {("t", 0): 10, ("t", 1): 4}, KEYS)
    d.got_ends(1.2, {("t", 0): 10}, KEYS)  # a partial answer agrees on what it has: not settled
    assert not d.settled
    now = 1.2
    for end in range(11, 30):  # a writer the census cannot see keeps moving one partition
        now += 0.2
        if d.decide(now, True, settling, 0.0, KEYS) is Step.CHECK_LAG:
            break
        d.got_ends(now, {("t", 0): end, ("t", 1): 4}, KEYS)
    assert d.reads == SETTLE_ROUNDS
    assert d.decide(now, True, settling, 0.0, KEYS) is Step.CHECK_LAG


def test_drain_times_out_whatever_the_census_says() -> None:
    d = Drain(started=0.0, deadline=5.0, last_message_at=0.0)
    assert d.decide(5.0, True, Verdict(Census.WAITING, ("p",)), 0.0, KEYS) is Step.TIMEOUT
    assert d.verdict.writers == ("p",)


class _UnreadView:
    """A fleet view whose first answer has not come yet."""

    def want(self) -> None:
        pass

    def producers(self) -> None:
        return None


def test_a_drain_waits_for_the_fleet_view_first_answer_then_goes_on_without_it() -> None:
    engine = SimpleNamespace(settings=SimpleNamespace(source="consul://127.0.0.1:8500/p"))
    census = WriterCensus(engine)
    census._fleet, census._fleet_known = _UnreadView(), True
    waiting = census.read("origin", 7, {"t"}, waited_s=0.5)
    assert waiting.verdict.census is Census.WAITING and not waiting.fleet
    later = census.read("origin", 7, {"t"}, waited_s=FLEET_WAIT_S)
    assert later.verdict.census is Census.LEFT and not later.fleet  # the quiet window covers the fleet now


class _BrokenView:
    """A fleet view that raises (a bug, or a hostile entry the parser did not expect)."""

    def want(self) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    def producers(self) -> None:
        raise AssertionError("not reached")


class _PartlyReadView:
    """A fleet view whose listing had an entry it could not read."""

    def want(self) -> None:
        pass

    def producers(self) -> tuple[list[WriterFacts], float]:
        return [], 0.0

    def complete(self) -> bool:
        return False


def test_a_failing_fleet_view_counts_as_unknown_and_never_ends_the_drain() -> None:
    engine = SimpleNamespace(settings=SimpleNamespace(source="consul://127.0.0.1:8500/p"))
    census = WriterCensus(engine)
    census._fleet, census._fleet_known = _BrokenView(), True
    assert census.read("origin", 7, {"t"}, waited_s=0.5).verdict.census is Census.WAITING
    later = census.read("origin", 7, {"t"}, waited_s=FLEET_WAIT_S)
    assert later.verdict.census is Census.LEFT and not later.fleet  # the quiet window covers the fleet


def test_a_fleet_listing_with_an_unreadable_entry_keeps_the_quiet_window() -> None:
    engine = SimpleNamespace(settings=SimpleNamespace(source="consul://127.0.0.1:8500/p"))
    census = WriterCensus(engine)
    census._fleet, census._fleet_known = _PartlyReadView(), True
    reading = census.read("origin", 7, {"t"}, waited_s=0.0)
    assert reading.verdict.census is Census.LEFT and not reading.fleet
    assert quiet_s(QUIET_AUTO, reading.fleet, staying=False) == 1.5
