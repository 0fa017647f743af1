"""Every public name of kafkashim, and every public member kafkashim defines on them, has a docstring.

The API reference (docs/api.md, built by mkdocstrings from these docstrings) would otherwise show an
empty entry. Same idea as confluent-kafka-python's tests/test_docs.py, extended to the members: methods,
properties and class/static methods that kafkashim itself defines (confluent_kafka's own are documented
upstream; enum members and dataclass fields are described by their class).
"""

from __future__ import annotations

import inspect
import types
from typing import Any

import kafkashim


def _own_members(cls: type) -> dict[str, Any]:
    """Public callables and properties defined by a kafkashim class or a kafkashim base of it."""
    members: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("kafkashim"):
            continue
        for name, raw in vars(klass).items():
            if name.startswith("_"):
                continue
            if isinstance(raw, staticmethod | classmethod):
                raw = raw.__func__
            if isinstance(raw, property) or inspect.isfunction(raw):
                members[name] = raw
    return members


def undocumented(module: types.ModuleType) -> list[str]:
    missing: list[str] = []
    for name in module.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(module, name)
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj):
            missing += [f"{name}.{m}" for m, raw in _own_members(obj).items() if not (raw.__doc__ or "").strip()]
    return missing


def test_every_public_name_and_member_has_a_docstring() -> None:
    assert undocumented(kafkashim) == []


def test_the_check_finds_a_missing_docstring() -> None:
    class Documented:
        """A class with a documented and an undocumented method."""

        def fine(self) -> None:
            """Documented."""

        def bare(self) -> None:
            pass

        @property
        def prop(self) -> int:
            return 1

    Documented.__module__ = "kafkashim.example"
    fake = types.ModuleType("fake")
    fake.__all__ = ["Documented", "undocumented_function"]  # type: ignore[attr-defined]
    fake.Documented = Documented  # type: ignore[attr-defined]
    fake.undocumented_function = lambda: None  # type: ignore[attr-defined]
    assert undocumented(fake) == ["Documented.bare", "Documented.prop", "undocumented_function"]
