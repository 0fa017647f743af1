"""Fixtures for the control-plane stores: Consul, Vault and AWS Secrets Manager.

Consul and Vault: the protocol doubles in tests/doubles/, unless ``CONSUL_HTTP_ADDR`` (with
``CONSUL_HTTP_TOKEN``, a management token, when ACLs are on) or ``VAULT_ADDR`` + ``VAULT_TOKEN`` (a root
token) point at real servers; then the same tests run against those, and the few that need to break the
server on purpose (take it down, seal it) skip. AWS: moto's server in a subprocess, reached by the real
boto3 through a fault-injecting proxy (tests/doubles/faults.py).

Schema Registry: two doubles (tests/doubles/schema_registry.py), unless ``SCHEMA_REGISTRY_URL`` and
``SCHEMA_REGISTRY_DESTINATION_URL`` point at two real registries.

Each test works under its own random prefix / path / secret name, so tests never see each other's keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from testkit.kafka import free_port
from tests.doubles.consul import ConsulDouble
from tests.doubles.faults import AwsFaultProxy
from tests.doubles.schema_registry import SchemaRegistryDouble
from tests.doubles.vault import VaultDouble

# ----------------------------------------------------------------------------------------- Consul


@dataclass
class ConsulStore:
    address: str  # host:port
    token: str
    double: ConsulDouble | None

    def client(self, token: str | None = None) -> Any:
        """A py-consul client as an SRE would use it. Build it before a test changes $CONSUL_HTTP_TOKEN:
        py-consul lets that variable override the constructor's token."""
        import consul

        host, _, port = self.address.rpartition(":")
        return consul.Consul(host=host, port=int(port), token=token or self.token or None)


@pytest.fixture(scope="session")
def consul_store() -> Iterator[ConsulStore]:
    addr = os.environ.get("CONSUL_HTTP_ADDR")
    if addr:
        yield ConsulStore(addr.split("://")[-1], os.environ.get("CONSUL_HTTP_TOKEN", ""), None)
        return
    double = ConsulDouble().start()
    yield ConsulStore(double.address, double.management_token, double)
    double.close()


@dataclass
class ConsulKit:
    """One test's corner of Consul: a unique prefix, the shim's source URL and an SRE's client."""

    store: ConsulStore
    prefix: str
    sre: Any

    @property
    def url(self) -> str:
        return f"consul://{self.store.address}/{self.prefix}"

    def put_profiles(self, clusters: Mapping[str, Mapping[str, Any]]) -> None:
        for name, profile in clusters.items():
            assert self.sre.kv.put(f"{self.prefix}/clusters/{name}", json.dumps(profile))

    def flip(self, active: str) -> None:
        """What the runbook says: ``consul kv put <prefix>/active <cluster>``."""
        assert self.sre.kv.put(f"{self.prefix}/active", active)

    def write(self, active: str, clusters: Mapping[str, Mapping[str, Any]]) -> None:
        self.put_profiles(clusters)
        self.flip(active)


@pytest.fixture
def consul_kit(consul_store: ConsulStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[ConsulKit]:
    sre = consul_store.client()
    kit = ConsulKit(consul_store, f"kafkashim-test/{uuid.uuid4().hex[:10]}", sre)
    if consul_store.token:
        monkeypatch.setenv("CONSUL_HTTP_TOKEN", consul_store.token)
    monkeypatch.delenv("CONSUL_HTTP_ADDR", raising=False)  # the shim gets its address from the URL
    yield kit
    sre.kv.delete(f"{kit.prefix}/", recurse=True)


def acl_enabled(store: ConsulStore) -> bool:
    """Whether the Consul behind ``store`` enforces ACLs (a server without them ignores every token).

    ``GET /v1/acl/token/self`` with an unknown token: 403 ``ACL not found`` with ACLs, 401 ``ACL support
    disabled`` without."""
    if store.double is not None:
        return store.double.acl
    import requests

    answer = requests.get(
        f"http://{store.address}/v1/acl/token/self",
        headers={"X-Consul-Token": "00000000-dead-beef-0000-000000000000"},
        timeout=10,
    )
    return answer.status_code != 401


def needs_double(store: Any) -> Any:
    if store.double is None:
        pytest.skip("breaks the server on purpose: runs against the double only")
    return store.double


# ------------------------------------------------------------------------------------------ Vault


@dataclass
class VaultStore:
    url: str
    root_token: str
    double: VaultDouble | None

    def admin(self) -> Any:
        import hvac

        return hvac.Client(url=self.url, token=self.root_token)


@pytest.fixture(scope="session")
def vault_store() -> Iterator[VaultStore]:
    addr = os.environ.get("VAULT_ADDR")
    if addr:
        yield VaultStore(addr, os.environ["VAULT_TOKEN"], None)
        return
    double = VaultDouble().start()
    yield VaultStore(double.url, double.root_token, double)
    double.close()


@dataclass
class VaultKit:
    """One test's corner of Vault: secrets under ``secret/<base>/``, and a token that may read only them."""

    store: VaultStore
    base: str
    admin: Any
    token: str

    def write(self, name: str, **fields: Any) -> int:
        response = self.admin.secrets.kv.v2.create_or_update_secret(
            path=f"{self.base}/{name}", secret=fields, mount_point="secret"
        )
        return int(response["data"]["version"])

    def ref(self, name: str, field: str) -> str:
        return "${vault:secret/" + f"{self.base}/{name}#{field}" + "}"

    def reader_token(self, ttl: str = "1h", renewable: bool = True) -> str:
        auth = self.admin.auth.token.create(policies=[self.policy], ttl=ttl, renewable=renewable)["auth"]
        return str(auth["client_token"])

    @property
    def policy(self) -> str:
        return f"read-{self.base.replace('/', '-')}"


@pytest.fixture
def vault_kit(vault_store: VaultStore, monkeypatch: pytest.MonkeyPatch) -> VaultKit:
    admin = vault_store.admin()
    base = f"kafkashim-test/{uuid.uuid4().hex[:10]}"
    kit = VaultKit(vault_store, base, admin, "")
    admin.sys.create_or_update_policy(
        name=kit.policy, policy=f'path "secret/data/{base}/*" {{\n  capabilities = ["read"]\n}}\n'
    )
    kit.token = kit.reader_token()
    for name in list(os.environ):
        if name.startswith(("VAULT_", "KAFKASHIM_VAULT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VAULT_ADDR", vault_store.url)
    monkeypatch.setenv("VAULT_TOKEN", kit.token)
    return kit


# -------------------------------------------------------------------------------------------- AWS


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's server (``python -m moto.server``) on a free loopback port, for the whole session."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1).read()  # noqa: S310 - loopback
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@dataclass
class AwsKit:
    proxy: AwsFaultProxy
    sre: Any  # a boto3 secretsmanager client straight to moto (the SRE's console)
    prefix: str

    def create(self, name: str, value: str | Mapping[str, Any]) -> str:
        text = value if isinstance(value, str) else json.dumps(value)
        secret_id = f"{self.prefix}/{name}"
        self.sre.create_secret(Name=secret_id, SecretString=text)
        return secret_id

    def rotate(self, secret_id: str, value: str | Mapping[str, Any]) -> str:
        """``aws secretsmanager put-secret-value``: a new version, moved to AWSCURRENT."""
        text = value if isinstance(value, str) else json.dumps(value)
        return str(self.sre.put_secret_value(SecretId=secret_id, SecretString=text)["VersionId"])

    @staticmethod
    def ref(secret_id: str, field: str | None = None) -> str:
        return "${aws-sm:" + secret_id + (f"#{field}" if field else "") + "}"


@pytest.fixture
def aws_kit(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsKit]:
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    proxy = AwsFaultProxy(moto_server).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", proxy.url)
    sre = boto3.session.Session().client("secretsmanager", endpoint_url=moto_server)
    yield AwsKit(proxy, sre, f"kafkashim-test/{uuid.uuid4().hex[:10]}")
    proxy.close()


# ------------------------------------------------------------------------------- Schema Registry


@dataclass
class RegistryStore:
    """One Schema Registry: the double, or a real one (``double`` None) when its URL is in the environment."""

    url: str
    user_info: str
    """``user:password`` with write access ("" when the registry needs no authentication)."""
    double: SchemaRegistryDouble | None

    def _call(self, method: str, path: str, body: Any = None, user_info: str | None = None) -> Any:
        import requests

        auth_info = self.user_info if user_info is None else user_info
        auth = tuple(auth_info.split(":", 1)) if auth_info else None
        answer = requests.request(
            method,
            f"{self.url}{path}",
            json=body,
            auth=auth,  # type: ignore[arg-type]
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
            timeout=10,
        )
        answer.raise_for_status()
        return answer.json()

    def register(self, subject: str, schema: str) -> int:
        """``POST /subjects/{subject}/versions``: the id the registry gives ``schema``."""
        return int(self._call("POST", f"/subjects/{subject}/versions", {"schema": schema})["id"])

    def latest(self, subject: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/subjects/{subject}/versions/latest"))

    def replicate_from(self, other: RegistryStore, subject: str) -> None:
        """What Schema Linking / an exporter does for one subject: every version of ``subject`` in ``other``
        registered here with the same id and version, through IMPORT mode (``PUT /mode/{subject}``)."""
        self._call("PUT", f"/mode/{subject}?force=true", {"mode": "IMPORT"})
        try:
            for version in other._call("GET", f"/subjects/{subject}/versions"):
                v = other._call("GET", f"/subjects/{subject}/versions/{version}")
                body = {"schema": v["schema"], "id": v["id"], "version": v["version"]}
                self._call("POST", f"/subjects/{subject}/versions", body)
        finally:
            self._call("PUT", f"/mode/{subject}", {"mode": "READWRITE"})


@pytest.fixture(scope="session")
def schema_registries() -> Iterator[tuple[RegistryStore, RegistryStore]]:
    """Two registries, "origin" and "destination": doubles, or real ones when ``SCHEMA_REGISTRY_URL`` and
    ``SCHEMA_REGISTRY_DESTINATION_URL`` are set (``SCHEMA_REGISTRY_USER_INFO`` /
    ``SCHEMA_REGISTRY_DESTINATION_USER_INFO`` for their credentials, with write access)."""
    url = os.environ.get("SCHEMA_REGISTRY_URL")
    if url:
        second = os.environ.get("SCHEMA_REGISTRY_DESTINATION_URL")
        if not second:
            pytest.skip("SCHEMA_REGISTRY_URL is set without SCHEMA_REGISTRY_DESTINATION_URL: two registries needed")
        yield (
            RegistryStore(url.rstrip("/"), os.environ.get("SCHEMA_REGISTRY_USER_INFO", ""), None),
            RegistryStore(second.rstrip("/"), os.environ.get("SCHEMA_REGISTRY_DESTINATION_USER_INFO", ""), None),
        )
        return
    yield from _two_doubles()


def _two_doubles() -> Iterator[tuple[RegistryStore, RegistryStore]]:
    doubles = [SchemaRegistryDouble().start(), SchemaRegistryDouble().start()]
    # Different id sequences, as two independent registries have: the same schema registered on both
    # without an import gets different ids.
    doubles[1].next_id = 100_001
    users = [d.add_user(f"app-{i}", uuid.uuid4().hex) for i, d in enumerate(doubles)]
    yield RegistryStore(doubles[0].url, users[0], doubles[0]), RegistryStore(doubles[1].url, users[1], doubles[1])
    for d in doubles:
        d.close()


@pytest.fixture
def own_schema_registries(request: pytest.FixtureRequest) -> Iterator[tuple[RegistryStore, RegistryStore]]:
    """Two registries of this test alone: fresh doubles (nothing an earlier test registered or imported can
    make their id sequences meet), or the real ones of `schema_registries` when their URLs are set (tests
    using them keep to their own subjects)."""
    if os.environ.get("SCHEMA_REGISTRY_URL"):
        yield request.getfixturevalue("schema_registries")
        return
    yield from _two_doubles()
