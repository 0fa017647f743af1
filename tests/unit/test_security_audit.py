"""Every property the installed librdkafka knows is classified for control documents (issue 11), and the
alias table matches the library's (finding 6).

The property list is librdkafka's own: ``rd_kafka_conf_properties_show(FILE *)``, the public function that
prints the table CONFIGURATION.md is generated from (one row per property, "Alias for `x`" in the
description of an alias), called through ctypes on the library confluent_kafka ships. A librdkafka upgrade
that adds a property fails `test_every_librdkafka_property_is_classified` until someone decides whether a
control document may set it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import re
import tempfile

import confluent_kafka
import pytest

from kafkashim.control.allowlist import (
    ALLOWED_PROPERTIES,
    APP_ONLY_PROPERTIES,
    FORBIDDEN_PROPERTIES,
    PROPERTY_ALIASES,
    SCHEMA_REGISTRY_PREFIX,
    SECRET_PROPERTIES,
    canonical_property,
    forbidden_reason,
    is_secret,
)


def _librdkafka() -> ctypes.CDLL:
    package = os.path.dirname(confluent_kafka.__file__)
    candidates = glob.glob(os.path.join(package, "..", "confluent_kafka.libs", "librdkafka*.so*"))
    candidates += glob.glob(os.path.join(package, ".dylibs", "librdkafka*.dylib"))
    if not candidates and ctypes.util.find_library("rdkafka"):
        candidates = [str(ctypes.util.find_library("rdkafka"))]
    if not candidates:
        pytest.skip("cannot locate the librdkafka confluent_kafka uses", allow_module_level=True)
    return ctypes.CDLL(candidates[0])


def _table() -> str:
    lib = _librdkafka()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_conf_properties_show.argtypes = [ctypes.c_void_p]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "CONFIGURATION.md")
        fp = libc.fopen(out.encode(), b"w")
        lib.rd_kafka_conf_properties_show(fp)
        libc.fclose(fp)
        with open(out, encoding="utf-8") as fh:
            return fh.read()


TABLE = _table() if os.name == "posix" else ""
_ROW = re.compile(r"^([a-z_][a-z0-9_.]*)\s+\|\s*([CP*])\s*\|[^|]*\|[^|]*\|[^|]*\|\s*(.*)$", re.M)


def library_properties() -> dict[str, str]:
    """Property → its description, from the installed librdkafka."""
    return {m.group(1): m.group(3) for m in _ROW.finditer(TABLE)}


def library_aliases() -> dict[str, str]:
    aliases: dict[str, str] = {}
    section = ""
    for line in TABLE.splitlines():
        if line.startswith("## "):
            section = line
        m = _ROW.match(line)
        alias = m and re.search(r"Alias for `([^`]+)`", m.group(3))
        if m and alias:
            aliases.setdefault(m.group(1), alias.group(1))
            if "Topic" in section and m.group(1) == "enable.auto.commit":
                aliases.pop("enable.auto.commit")  # also a global property in its own right
    return aliases


def test_the_library_table_was_read() -> None:
    assert confluent_kafka.libversion()[0] and len(library_properties()) > 150
    assert "bootstrap.servers" in library_properties()


def test_every_librdkafka_property_is_classified() -> None:
    classified = ALLOWED_PROPERTIES | set(FORBIDDEN_PROPERTIES) | APP_ONLY_PROPERTIES
    unclassified = sorted(set(library_properties()) - classified)
    assert not unclassified, (
        f"librdkafka {confluent_kafka.libversion()[0]} has properties kafkashim has not classified: {unclassified}. "
        "Add each to ALLOWED_PROPERTIES, FORBIDDEN_PROPERTIES (with the reason) or APP_ONLY_PROPERTIES in "
        "kafkashim/control/allowlist.py, and say why in docs/security.md"
    )


def test_the_three_classes_do_not_overlap() -> None:
    assert not ALLOWED_PROPERTIES & set(FORBIDDEN_PROPERTIES)
    assert not ALLOWED_PROPERTIES & APP_ONLY_PROPERTIES
    assert not set(FORBIDDEN_PROPERTIES) & APP_ONLY_PROPERTIES


def test_the_allowed_properties_are_librdkafka_or_schema_registry_settings() -> None:
    unknown = {
        p for p in ALLOWED_PROPERTIES if p not in library_properties() and not p.startswith(SCHEMA_REGISTRY_PREFIX)
    }
    assert not unknown


DANGEROUS = re.compile(
    r"(location|\.file$|\.path|\.paths|cmd|library|engine|providers|interceptor|verification|unsecure|cipher|"
    r"curves|sigalgs|endpoint\.url|keytab|_cb$|^opaque$|stores|debug|plugin)"
)


def test_no_property_that_loads_code_reads_files_or_weakens_tls_is_allowed() -> None:
    risky = sorted(p for p in library_properties() if DANGEROUS.search(p))
    assert len(risky) > 20
    for prop in risky:
        assert forbidden_reason(prop, "x") is not None, prop
    for prop in library_properties():
        if prop not in ALLOWED_PROPERTIES:
            assert forbidden_reason(prop, "x") is not None, prop


def test_the_alias_table_is_librdkafka_own() -> None:
    assert library_aliases() == dict(PROPERTY_ALIASES)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("sasl.mechanism", "sasl.mechanisms"),
        ("sasl.mechanisms", "sasl.mechanisms"),
        ("bootstrap.servers", "metadata.broker.list"),
        ("linger.ms", "queue.buffering.max.ms"),
        ("acks", "request.required.acks"),
        ("sasl.oauthbearer.client.credentials.client.secret", "sasl.oauthbearer.client.secret"),
        ("group.id", "group.id"),
    ],
)
def test_canonical_property_maps_every_alias_to_what_librdkafka_sets(name: str, canonical: str) -> None:
    assert canonical_property(name) == canonical


def test_an_alias_of_a_secret_property_is_secret_too() -> None:
    for alias, target in PROPERTY_ALIASES.items():
        assert is_secret(alias) == is_secret(target) or alias in SECRET_PROPERTIES


def test_an_alias_is_classified_like_its_target() -> None:
    """A document may not reach a refused property through an alias, nor be refused one it may set."""
    for alias, target in PROPERTY_ALIASES.items():
        if alias in ALLOWED_PROPERTIES:
            assert target in ALLOWED_PROPERTIES or target == "metadata.broker.list", alias
        if target in FORBIDDEN_PROPERTIES:
            assert alias in FORBIDDEN_PROPERTIES, alias
