"""The cutover state model, without a broker: every transition of the table, the illegal ones, stale
attempts, deferral, and random event sequences (hypothesis) that must never leave a client without a cluster."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from kafkashim.cutover.events import CutoverState
from kafkashim.cutover.states import PUBLIC_STATE, TRANSITIONS, CutoverModel, Event, IllegalTransition, Phase

ATTEMPT_STAMPED = {
    Event.READY,
    Event.FAILED,
    Event.DRAIN,
    Event.DRAINED,
    Event.TIMEOUT,
    Event.CLAIMED,
    Event.SWITCHED,
    Event.POSITIONED,
}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def model_in(phase: Phase) -> CutoverModel[str, str]:
    """A model driven into ``phase`` through legal events only (target "B", current "A")."""
    m: CutoverModel[str, str] = CutoverModel("A", Clock())
    path = {
        Phase.STEADY: [],
        Phase.PREPARING: [Event.CHANGED],
        Phase.ARMED: [Event.CHANGED, Event.READY],
        Phase.DRAINING: [Event.CHANGED, Event.READY, Event.DRAIN],
        Phase.SWITCHING: [Event.CHANGED, Event.READY, Event.CLAIMED],
        Phase.JOINING: [Event.CHANGED, Event.READY, Event.CLAIMED, Event.SWITCHED],
        Phase.CLOSED: [Event.CLOSE],
    }[phase]
    for event in path:
        fire(m, event)
    assert m.phase is phase
    return m


def fire(m: CutoverModel[str, str], event: Event, **kw: object) -> Phase | None:
    if event in ATTEMPT_STAMPED:
        kw.setdefault("attempt", m.attempt)
    if event is Event.CHANGED:
        kw.setdefault("target", "B")
    return m.fire(event, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("phase", "event"), sorted(TRANSITIONS))
def test_every_listed_transition_leads_where_the_table_says(phase: Phase, event: Event) -> None:
    m = model_in(phase)
    assert fire(m, event) is TRANSITIONS[(phase, event)]
    assert m.phase is TRANSITIONS[(phase, event)]


UNLISTED = [
    (p, e)
    for p, e in itertools.product(Phase, Event)
    if (p, e) not in TRANSITIONS and e is not Event.CLOSE and p is not Phase.CLOSED
]


@pytest.mark.parametrize(("phase", "event"), UNLISTED)
def test_an_event_the_table_does_not_list_raises_and_changes_nothing(phase: Phase, event: Event) -> None:
    m = model_in(phase)
    before = (m.phase, m.current, m.target, m.attempt)
    with pytest.raises(IllegalTransition, match=f"{event.value!r} is not allowed in phase {phase.value!r}"):
        fire(m, event)
    assert (m.phase, m.current, m.target, m.attempt) == before


def test_the_table_is_not_empty_of_illegal_pairs() -> None:
    # A table that allowed everything would make the test above vacuous.
    assert len(UNLISTED) >= 20


@pytest.mark.parametrize("phase", list(Phase))
def test_close_is_legal_from_every_phase_and_nothing_leaves_closed(phase: Phase) -> None:
    m = model_in(phase)
    assert fire(m, Event.CLOSE) is Phase.CLOSED
    for event in Event:
        assert fire(m, event) in (None, Phase.CLOSED)
        assert m.phase is Phase.CLOSED
    assert m.state is CutoverState.CLOSED


def test_every_phase_has_a_public_state() -> None:
    assert set(PUBLIC_STATE) == set(Phase)
    assert PUBLIC_STATE[Phase.ARMED] is PUBLIC_STATE[Phase.SWITCHING] is CutoverState.HANDING_OFF


def test_a_full_cutover_moves_current_only_when_switched() -> None:
    m = model_in(Phase.STEADY)
    seen = []
    for event in (Event.CHANGED, Event.READY, Event.DRAIN, Event.DRAINED, Event.CLAIMED):
        fire(m, event)
        seen.append((m.phase, m.current, m.target))
    assert all(current == "A" and target == "B" for _, current, target in seen)
    fire(m, Event.SWITCHED)
    assert (m.phase, m.current) == (Phase.JOINING, "B")
    fire(m, Event.POSITIONED)
    assert (m.phase, m.current, m.target) == (Phase.STEADY, "B", None)


def test_events_of_a_superseded_attempt_are_stale_and_change_nothing() -> None:
    m = model_in(Phase.PREPARING)
    first = m.attempt
    fire(m, Event.CHANGED, target="C")
    assert m.attempt == first + 1 and m.target == "C"
    for event in (Event.READY, Event.FAILED):
        assert m.fire(event, attempt=first) is None
    assert (m.phase, m.target) == (Phase.PREPARING, "C")


def test_attempt_stamped_events_must_say_their_attempt() -> None:
    m = model_in(Phase.PREPARING)
    with pytest.raises(IllegalTransition, match="which attempt"):
        m.fire(Event.READY)


def test_documents_during_a_switch_are_deferred_newest_first_and_taken_once() -> None:
    m = model_in(Phase.SWITCHING)
    assert m.fire(Event.CHANGED, document="doc-1") is Phase.SWITCHING
    assert m.fire(Event.UNCHANGED, document="doc-2") is Phase.SWITCHING
    assert m.target == "B"
    assert m.take_deferred() == "doc-2"
    assert m.take_deferred() is None


def test_unchanged_adopts_the_newer_placement_and_abandons_an_attempt() -> None:
    m = model_in(Phase.ARMED)
    assert m.fire(Event.UNCHANGED, target="A@epoch9") is Phase.STEADY
    assert (m.current, m.target) == ("A@epoch9", None)


def test_a_rollback_keeps_the_old_cluster() -> None:
    m = model_in(Phase.SWITCHING)
    fire(m, Event.FAILED)
    assert (m.phase, m.current, m.target) == (Phase.STEADY, "A", None)


def test_phase_entry_times_come_from_the_injected_clock() -> None:
    clock = Clock()
    m: CutoverModel[str, str] = CutoverModel("A", clock)
    m.fire(Event.CHANGED, target="B")
    changed_at = clock.now
    assert m.entered_at == m.attempt_started_at == changed_at
    m.fire(Event.READY, attempt=m.attempt)
    assert m.entered_at == clock.now and m.attempt_started_at == changed_at


class CutoverSequences(RuleBasedStateMachine):
    """Any sequence of events, legal or not, fresh or stale: the model stays in a legal phase, raises only
    IllegalTransition, and the client always has a cluster it was actually sent to."""

    def __init__(self) -> None:
        super().__init__()
        self.model: CutoverModel[str, str] = CutoverModel("A", Clock())
        self.targets = {"A"}

    @invariant()
    def always_has_a_cluster_it_was_sent_to(self) -> None:
        assert self.model.current in self.targets
        assert self.model.phase in Phase
        if self.model.phase in (Phase.STEADY, Phase.CLOSED):
            assert self.model.target is None
        elif self.model.phase is not Phase.CLOSED:
            assert self.model.target is not None

    @rule(event=st.sampled_from(list(Event)), where=st.sampled_from("ABCD"), lag=st.integers(0, 2))
    def any_event(self, event: Event, where: str, lag: int) -> None:
        kw: dict[str, object] = {}
        if event in ATTEMPT_STAMPED:
            kw["attempt"] = max(0, self.model.attempt - lag)
        if event in (Event.CHANGED, Event.UNCHANGED):
            kw["target"] = where
            kw["document"] = f"doc-{where}"
            if event is Event.UNCHANGED:
                kw["target"] = self.model.current  # unchanged: where the client already is
        before = self.model.phase
        if event is Event.CHANGED:
            self.targets.add(where)
        try:
            self.model.fire(event, **kw)  # type: ignore[arg-type]
        except IllegalTransition:
            assert self.model.phase is before

    @precondition(lambda self: self.model.phase is Phase.SWITCHING)
    @rule()
    def switch_completes(self) -> None:
        self.model.fire(Event.SWITCHED, attempt=self.model.attempt)
        assert self.model.phase is Phase.JOINING


TestCutoverSequences = CutoverSequences.TestCase
TestCutoverSequences.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
