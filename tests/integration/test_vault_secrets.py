"""``${vault:...}`` references, resolved by the real hvac client against the Vault double (or a real Vault
when VAULT_ADDR and VAULT_TOKEN are set): token, AppRole and Kubernetes login, renewal, re-reads, and every
way a read can fail."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kafkashim.errors import (
    ConfigurationError,
    SecretAccessDeniedError,
    SecretBackendUnavailableError,
    SecretNotFoundError,
)
from tests.conftest import ControlFile
from tests.planes import follow, start
from tests.stores import VaultKit, needs_double

API_SECRET = "vault-api-secret-3f9c1e"


@pytest.fixture
def ccloud_doc(vault_kit: VaultKit, control_file: Callable[..., ControlFile]) -> ControlFile:
    """A control file whose ccloud profile takes its API key and secret from Vault."""
    vault_kit.write("ccloud", api_key="KEY1", api_secret=API_SECRET)
    return control_file(
        {
            "onprem": {"bootstrap.servers": "kafka-1:9092"},
            "ccloud": {
                "bootstrap.servers": "pkc-1:9092",
                "security.protocol": "SASL_SSL",
                "sasl.mechanisms": "PLAIN",
                "sasl.username": vault_kit.ref("ccloud", "api_key"),
                "sasl.password": vault_kit.ref("ccloud", "api_secret"),
            },
        },
        active="onprem",
    )


def creds(doc: Any) -> tuple[Any, Any]:
    props = doc.clusters["ccloud"].properties
    return props["sasl.username"], props["sasl.password"]


def test_references_resolve_with_a_token_and_never_show_in_repr(ccloud_doc: ControlFile) -> None:
    with follow(ccloud_doc.url) as f:
        assert creds(f.current) == ("KEY1", API_SECRET)
        shown = repr(f.current)
        assert API_SECRET not in shown and "KEY1" not in shown  # a resolved reference is a secret, whatever its key


def test_approle_login_with_role_and_secret_ids_from_files(
    vault_kit: VaultKit, ccloud_doc: ControlFile, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    admin = vault_kit.admin
    if not _has_approle(admin):
        admin.sys.enable_auth_method("approle")
    role = f"kafkashim-{vault_kit.base.rsplit('/', 1)[1]}"
    admin.auth.approle.create_or_update_approle(role, token_policies=[vault_kit.policy], token_ttl="1h")
    (tmp_path / "role-id").write_text(admin.auth.approle.read_role_id(role)["data"]["role_id"] + "\n")
    (tmp_path / "secret-id").write_text(admin.auth.approle.generate_secret_id(role)["data"]["secret_id"])
    monkeypatch.delenv("VAULT_TOKEN")
    monkeypatch.setenv("KAFKASHIM_VAULT_ROLE_ID_FILE", str(tmp_path / "role-id"))
    monkeypatch.setenv("KAFKASHIM_VAULT_SECRET_ID_FILE", str(tmp_path / "secret-id"))
    with follow(ccloud_doc.url) as f:
        assert creds(f.current) == ("KEY1", API_SECRET)


def _has_approle(admin: Any) -> bool:
    return "approle/" in admin.sys.list_auth_methods()["data"]


def test_kubernetes_login_with_the_service_account_token(
    vault_kit: VaultKit, ccloud_doc: ControlFile, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    double = needs_double(vault_kit.store)  # a real Kubernetes login needs a real TokenReview API
    double.add_kubernetes_role("billing", "eyJ.sa-token.sig", [vault_kit.policy])
    double.add_namespace("team-billing")
    (tmp_path / "token").write_text("eyJ.sa-token.sig")
    monkeypatch.delenv("VAULT_TOKEN")
    monkeypatch.setenv("KAFKASHIM_VAULT_K8S_ROLE", "billing")
    monkeypatch.setenv("KAFKASHIM_VAULT_K8S_JWT_FILE", str(tmp_path / "token"))
    monkeypatch.setenv("VAULT_NAMESPACE", "team-billing")
    with follow(ccloud_doc.url) as f:
        assert creds(f.current) == ("KEY1", API_SECRET)
    assert "team-billing" in double.namespaces_seen
    (tmp_path / "token").write_text("eyJ.someone-else.sig")
    with pytest.raises(SecretAccessDeniedError, match="Vault refused to log in with kubernetes"):
        start(ccloud_doc.url)


def test_an_unknown_namespace_is_named_in_the_error_not_reported_as_a_missing_secret(
    vault_kit: VaultKit, ccloud_doc: ControlFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OpenBao 2.6.2 (built from source) answers 404 {"errors":["namespace not found"]} on every path.
    monkeypatch.setenv("VAULT_NAMESPACE", "no-such-team")
    if vault_kit.store.double is None:
        import hvac

        probe = hvac.Client(url=vault_kit.admin.url, token=vault_kit.admin.token, namespace="no-such-team")
        try:
            probe.auth.token.lookup_self()
            pytest.skip("this server ignores namespaces (Vault OSS)")
        except hvac.exceptions.InvalidPath:
            pass
    with pytest.raises(SecretNotFoundError, match=r"Vault has no namespace 'no-such-team' \(VAULT_NAMESPACE\)") as info:
        start(ccloud_doc.url)
    assert "no secret at this path" not in str(info.value)


def test_the_token_is_renewed_before_it_expires(
    vault_kit: VaultKit, ccloud_doc: ControlFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_TOKEN", vault_kit.reader_token(ttl="3s"))
    with follow(ccloud_doc.url) as f:
        time.sleep(4.5)  # past the original TTL: without renew-self the token would be gone
        vault_kit.write("ccloud", api_key="KEY2", api_secret=API_SECRET)
        ccloud_doc.write("ccloud")  # a document change re-reads every secret with the (renewed) token
        f.wait_for(lambda d: d.active == "ccloud")
        assert creds(f.current) == ("KEY2", API_SECRET)
    if vault_kit.store.double is not None:
        assert vault_kit.store.double.renewals >= 2


def test_a_renewal_that_fails_is_retried_later_not_in_a_loop(
    vault_kit: VaultKit, ccloud_doc: ControlFile, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    double = needs_double(vault_kit.store)
    admin = vault_kit.admin
    role = f"short-{vault_kit.base.rsplit('/', 1)[1]}"
    admin.auth.approle.create_or_update_approle(role, token_policies=[vault_kit.policy], token_ttl="3s")
    monkeypatch.delenv("VAULT_TOKEN")
    monkeypatch.setenv("KAFKASHIM_VAULT_ROLE_ID", admin.auth.approle.read_role_id(role)["data"]["role_id"])
    monkeypatch.setenv("KAFKASHIM_VAULT_SECRET_ID", admin.auth.approle.generate_secret_id(role)["data"]["secret_id"])
    with follow(ccloud_doc.url) as f, caplog.at_level(logging.WARNING, "kafkashim"):
        assert creds(f.current) == ("KEY1", API_SECRET)
        double.seal()
        try:
            before = double.requests
            time.sleep(3.5)  # renewal falls due at 2 s and fails, and so does logging in again: Vault is sealed
            assert 1 <= double.requests - before <= 4, double.requests - before
            assert any("sealed" in r.getMessage() for r in caplog.records)
        finally:
            double.unseal()
        assert creds(f.current) == ("KEY1", API_SECRET)  # the clients keep what they have


def test_secrets_are_re_read_on_the_refresh_interval_and_a_rotation_becomes_a_new_document(
    vault_kit: VaultKit, ccloud_doc: ControlFile
) -> None:
    with follow(ccloud_doc.url, secrets_refresh_interval_ms=1000) as f:
        vault_kit.write("ccloud", api_key="KEY1", api_secret="rotated-secret")
        doc = f.wait_for(lambda d: creds(d)[1] == "rotated-secret", timeout_s=5)
        assert doc.active == "onprem" and doc.epoch == f.docs[0].epoch  # same document, new credentials
        assert len(f.docs) == 1


def test_a_deleted_current_version_is_an_error_not_an_empty_secret(
    vault_kit: VaultKit, ccloud_doc: ControlFile
) -> None:
    vault_kit.admin.secrets.kv.v2.delete_latest_version_of_secret(path=f"{vault_kit.base}/ccloud")
    with pytest.raises(SecretNotFoundError, match=r"clusters\.ccloud\.sasl\.username.*version \(1\) was deleted"):
        start(ccloud_doc.url)


def test_a_destroyed_current_version_is_an_error(vault_kit: VaultKit, ccloud_doc: ControlFile) -> None:
    vault_kit.admin.secrets.kv.v2.destroy_secret_versions(path=f"{vault_kit.base}/ccloud", versions=[1])
    with pytest.raises(SecretNotFoundError, match=r"version \(1\) was destroyed"):
        start(ccloud_doc.url)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("MISSING", r"no secret at this path"),
        ("FIELD", r"has no field 'nope' \(fields: api_key, api_secret\)"),
    ],
)
def test_an_unresolvable_reference_fails_with_its_path(
    vault_kit: VaultKit, control_file: Callable[..., ControlFile], ref: str, message: str
) -> None:
    vault_kit.write("ccloud", api_key="KEY1", api_secret=API_SECRET)
    value = vault_kit.ref("ccloud", "nope") if ref == "FIELD" else vault_kit.ref("nothing-here", "x")
    cf = control_file({"a": {"bootstrap.servers": "a:1", "sasl.password": value}}, active="a")
    with pytest.raises(SecretNotFoundError, match=message) as info:
        start(cf.url)
    assert info.value.path == "clusters.a.sasl.password"


def test_a_token_without_the_policy_gets_403(
    vault_kit: VaultKit, ccloud_doc: ControlFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = vault_kit.admin.auth.token.create(policies=["default"], ttl="1h")["auth"]["client_token"]
    monkeypatch.setenv("VAULT_TOKEN", token)
    with pytest.raises(SecretAccessDeniedError, match=r"Vault refused to read the secret \(permission denied\)"):
        start(ccloud_doc.url)


def test_a_sealed_vault_at_start_fails_after_the_bounded_wait(vault_kit: VaultKit, ccloud_doc: ControlFile) -> None:
    double = needs_double(vault_kit.store)
    double.seal()
    try:
        with pytest.raises(SecretBackendUnavailableError, match=r"sealed.*startup\.timeout\.ms=600"):
            start(ccloud_doc.url, source_startup_timeout_ms=600)
    finally:
        double.unseal()


def test_a_vault_sealed_mid_run_keeps_the_credentials_warns_once_and_recovers(
    vault_kit: VaultKit, ccloud_doc: ControlFile, caplog: pytest.LogCaptureFixture
) -> None:
    double = needs_double(vault_kit.store)
    with follow(ccloud_doc.url, secrets_refresh_interval_ms=1000) as f, caplog.at_level(logging.INFO, "kafkashim"):
        double.seal()
        try:
            ccloud_doc.write("ccloud")  # the SRE flips while Vault is sealed: the known credentials carry it
            f.wait_for(lambda d: d.active == "ccloud")
            assert creds(f.current) == ("KEY1", API_SECRET)
            time.sleep(2.2)  # two refreshes fail meanwhile
            warnings = [r.getMessage() for r in caplog.records if "sealed" in r.getMessage()]
            assert len(warnings) == 1 and "keeping the value read earlier" in warnings[0], warnings
        finally:
            double.unseal()
        vault_kit.write("ccloud", api_key="KEY3", api_secret=API_SECRET)
        f.wait_for(lambda d: creds(d)[0] == "KEY3", timeout_s=5)
        assert any("healthy again" in r.getMessage() for r in caplog.records)


def test_no_login_configured_is_a_clear_configuration_error(
    ccloud_doc: ControlFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VAULT_TOKEN")
    with pytest.raises(ConfigurationError, match=r"no Vault login is configured: set VAULT_TOKEN"):
        start(ccloud_doc.url)


def test_vault_unreachable_is_an_outage(ccloud_doc: ControlFile, monkeypatch: pytest.MonkeyPatch) -> None:
    from testkit.kafka import free_port

    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SecretBackendUnavailableError, match="cannot reach Vault"):
        start(ccloud_doc.url)
