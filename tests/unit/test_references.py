"""Secret references: parsing, substitution, the resolver's rules, and the env/file stores."""

from __future__ import annotations

import os
from pathlib import Path
from types import MappingProxyType

import pytest

from kafkashim.control.document import ClusterProfile, ControlDocument
from kafkashim.control.references import Reference, ReferenceSyntaxError, parse_reference, references_in, substitute
from kafkashim.control.secrets import Secret, SecretBackend, SecretResolver, backend_factory
from kafkashim.errors import (
    ForbiddenPropertyError,
    InvalidDocumentError,
    SecretAccessDeniedError,
    SecretBackendUnavailableError,
    SecretNotFoundError,
)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("vault:secret/kafka/ccloud#api_key", Reference("vault", "secret/kafka/ccloud", "api_key")),
        ("aws-sm:prod/ccloud/sr#user_info", Reference("aws-sm", "prod/ccloud/sr", "user_info")),
        (
            "aws-sm:arn:aws:secretsmanager:eu-west-1:1:secret:x-AbC",
            Reference("aws-sm", "arn:aws:secretsmanager:eu-west-1:1:secret:x-AbC"),
        ),
        ("env:KAFKA_PASSWORD", Reference("env", "KAFKA_PASSWORD")),
        ("file:/var/run/secrets/kafka/password", Reference("file", "/var/run/secrets/kafka/password")),
    ],
)
def test_references_parse(body: str, expected: Reference) -> None:
    assert parse_reference(body) == expected
    assert parse_reference(expected.text) == expected


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("consul:kafkashim/x", "unknown scheme 'consul'"),
        ("secret/kafka", "has no scheme"),
        ("vault:secret#f", "<mount>/<path>"),
        ("vault:secret/kafka", "name the field"),
        ("vault:secret/kafka#", "empty #field"),
        ("env:1BAD", "one environment variable"),
        ("file:relative/path", "absolute file path"),
        ("file:/var/run/secrets/../../etc/shadow", "without '..'"),
        ("aws-sm:", "secret id"),
    ],
)
def test_malformed_references_say_why(body: str, reason: str) -> None:
    with pytest.raises(ReferenceSyntaxError, match=reason):
        parse_reference(body)


def test_several_references_in_one_value_and_unclosed_ones() -> None:
    value = "clientId=${env:ID} clientSecret=${env:SECRET}"
    refs = references_in(value)
    assert [r.target for r in refs] == ["ID", "SECRET"]
    assert substitute(value, {refs[0]: "a", refs[1]: "b"}) == "clientId=a clientSecret=b"
    with pytest.raises(ReferenceSyntaxError, match="without a matching"):
        references_in("${env:ID")


class Store(SecretBackend):
    """An in-memory store whose answers the test sets; counts reads."""

    scheme = "vault"

    def __init__(self) -> None:
        self.secrets: dict[str, dict[str, object]] = {}
        self.down = False
        self.reads = 0

    def read(self, target: str, previous: Secret | None) -> Secret:
        self.reads += 1
        if self.down:
            raise SecretBackendUnavailableError(f"{target}: sealed", reference=f"vault:{target}")
        if target not in self.secrets:
            raise SecretNotFoundError(f"{target}: no secret", reference=f"vault:{target}")
        return Secret(self.secrets[target], "1")


def template(**props: str) -> ControlDocument:
    clusters = {
        "a": ClusterProfile("a", {"bootstrap.servers": "a:1"}),
        "b": ClusterProfile("b", {"bootstrap.servers": "b:1", "security.protocol": "SSL", **props}),
    }
    return ControlDocument(active="a", epoch=3, clusters=MappingProxyType(clusters), source="test")


def test_the_resolver_reads_each_secret_once_per_pass_and_resolves_every_cluster() -> None:
    store = Store()
    store.secrets["secret/k"] = {"user": "user-7f3", "password": "pw-91c"}
    resolver = SecretResolver(lambda scheme: store, "test")
    doc, problems = resolver.resolve(
        template(**{"sasl.username": "${vault:secret/k#user}", "sasl.password": "${vault:secret/k#password}"})
    )
    assert problems == [] and store.reads == 1
    assert doc.clusters["b"].properties["sasl.password"] == "pw-91c"  # not the active cluster: resolved all the same
    assert doc.clusters["b"].secret_keys == {"sasl.username", "sasl.password"}
    assert "pw-91c" not in repr(doc) and "user-7f3" not in repr(doc)
    assert doc.epoch == 3 and doc.active == "a"


def test_an_outage_is_papered_over_only_with_a_value_read_before() -> None:
    store = Store()
    resolver = SecretResolver(lambda scheme: store, "test")
    tpl = template(**{"sasl.password": "${vault:secret/k#password}"})
    store.down = True
    with pytest.raises(SecretBackendUnavailableError, match="sealed") as info:
        resolver.resolve(tpl)  # never read: nothing to fall back on
    assert info.value.path == "clusters.b.sasl.password"
    store.down = False
    store.secrets["secret/k"] = {"password": "P"}
    resolver.resolve(tpl)
    store.down = True
    doc, problems = resolver.resolve(tpl)
    assert doc.clusters["b"].properties["sasl.password"] == "P"
    assert len(problems) == 1 and isinstance(problems[0], SecretBackendUnavailableError)


def test_a_missing_secret_is_not_papered_over() -> None:
    store = Store()
    store.secrets["secret/k"] = {"password": "P"}
    resolver = SecretResolver(lambda scheme: store, "test")
    tpl = template(**{"sasl.password": "${vault:secret/k#password}"})
    resolver.resolve(tpl)
    del store.secrets["secret/k"]
    with pytest.raises(SecretNotFoundError):
        resolver.resolve(tpl)


def test_a_resolved_value_must_obey_the_allowlist_too() -> None:
    store = Store()
    store.secrets["secret/tls"] = {"algo": "none", "empty": ""}
    resolver = SecretResolver(lambda scheme: store, "test")
    with pytest.raises(ForbiddenPropertyError, match=r"resolves to a value.*host name verification"):
        resolver.resolve(template(**{"ssl.endpoint.identification.algorithm": "${vault:secret/tls#algo}"}))
    with pytest.raises(InvalidDocumentError, match=r"clusters\.b\.bootstrap\.servers must be a non-empty"):
        resolver.resolve(template(**{"bootstrap.servers": "${vault:secret/tls#empty}"}))


def test_env_references_read_the_environment_but_never_kafkashim_own_credentials() -> None:
    make = backend_factory(
        {"KAFKA_PASSWORD": "pw", "VAULT_TOKEN": "hvs.x", "AWS_SECRET_ACCESS_KEY": "k"}, (), ["KAFKA_*", "*"]
    )
    env = make("env")
    assert env.read("KAFKA_PASSWORD", None).payload == "pw"
    with pytest.raises(SecretNotFoundError, match="MISSING is not set"):
        env.read("MISSING", None)
    for protected in ("VAULT_TOKEN", "AWS_SECRET_ACCESS_KEY"):
        with pytest.raises(SecretAccessDeniedError, match="kafkashim's own store credentials"):
            env.read(protected, None)


def test_file_references_read_only_below_the_allowed_roots(tmp_path: Path) -> None:
    root = tmp_path / "secrets"
    root.mkdir()
    (root / "password").write_text("s3cret\n")
    outside = tmp_path / "elsewhere"
    outside.write_text("private")
    os.symlink(outside, root / "sneaky")
    files = backend_factory({}, [str(root)])("file")
    assert files.read(str(root / "password"), None).payload == "s3cret"  # the trailing newline removed
    with pytest.raises(SecretAccessDeniedError, match=r"outside kafkashim\.secrets\.file\.roots"):
        files.read(str(outside), None)
    with pytest.raises(SecretAccessDeniedError, match="outside"):
        files.read(str(root / "sneaky"), None)  # a symlink out of the root is outside it
    with pytest.raises(SecretNotFoundError, match="no such file"):
        files.read(str(root / "missing"), None)
