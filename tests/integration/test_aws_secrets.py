"""``${aws-sm:...}`` references, resolved by real boto3 against moto's server (through a proxy that can inject
the errors moto never sends): AWSCURRENT, JSON fields, rotation by VersionId, throttling, AccessDenied."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from kafkashim.errors import SecretAccessDeniedError, SecretBackendUnavailableError, SecretNotFoundError
from tests.conftest import ControlFile
from tests.planes import follow, start
from tests.stores import AwsKit

SR_USER_INFO = "SRKEY:sr-secret-81be"


def doc_with(control_file: Callable[..., ControlFile], **props: str) -> ControlFile:
    # SSL: the credentials the tests resolve would be refused over a cleartext transport (docs/security.md).
    return control_file(
        {"ccloud": {"bootstrap.servers": "pkc-1:9092", "security.protocol": "SSL", **props}}, active="ccloud"
    )


def prop(doc: object, key: str) -> object:
    return doc.clusters["ccloud"].properties[key]  # type: ignore[attr-defined]


def test_a_whole_secret_string_and_a_json_field_resolve_from_awscurrent(
    aws_kit: AwsKit, control_file: Callable[..., ControlFile]
) -> None:
    sr = aws_kit.create("sr", SR_USER_INFO)
    kafka = aws_kit.create("kafka", {"api_key": "K1", "api_secret": "S1", "port": 9092})
    cf = doc_with(
        control_file,
        **{
            "schema.registry.basic.auth.user.info": aws_kit.ref(sr),
            "sasl.username": aws_kit.ref(kafka, "api_key"),
            "sasl.password": aws_kit.ref(kafka, "api_secret"),
            "bootstrap.servers": "pkc-1:${aws-sm:" + kafka + "#port}",
        },
    )
    with follow(cf.url) as f:
        assert prop(f.current, "schema.registry.basic.auth.user.info") == SR_USER_INFO
        assert (prop(f.current, "sasl.username"), prop(f.current, "sasl.password")) == ("K1", "S1")
        assert prop(f.current, "bootstrap.servers") == "pkc-1:9092"
        assert SR_USER_INFO not in repr(f.current) and "S1" not in repr(f.current.active_profile)
    assert aws_kit.proxy.calls.count("GetSecretValue") == 2  # one read per secret, not per reference


def test_a_rotation_is_detected_by_version_id_while_the_client_runs(
    aws_kit: AwsKit, control_file: Callable[..., ControlFile]
) -> None:
    kafka = aws_kit.create("kafka", {"api_key": "K1", "api_secret": "S1"})
    cf = doc_with(control_file, **{"sasl.password": aws_kit.ref(kafka, "api_secret")})
    with follow(cf.url, secrets_refresh_interval_ms=1000) as f:
        time.sleep(1.2)  # at least one refresh with nothing rotated
        assert aws_kit.proxy.calls.count("GetSecretValue") == 1
        assert aws_kit.proxy.calls.count("DescribeSecret") >= 1  # the cheap check
        aws_kit.rotate(kafka, {"api_key": "K1", "api_secret": "S2"})
        doc = f.wait_for(lambda d: prop(d, "sasl.password") == "S2", timeout_s=5)
        assert doc.epoch == f.docs[0].epoch and len(f.docs) == 1
    assert aws_kit.proxy.calls.count("GetSecretValue") == 2


def test_without_describe_secret_permission_a_rotation_is_still_picked_up(
    aws_kit: AwsKit, control_file: Callable[..., ControlFile]
) -> None:
    kafka = aws_kit.create("kafka", {"api_secret": "S1"})
    cf = doc_with(control_file, **{"sasl.password": aws_kit.ref(kafka, "api_secret")})
    aws_kit.proxy.inject("AccessDeniedException", "DescribeSecret")  # a policy granting GetSecretValue only
    with follow(cf.url, secrets_refresh_interval_ms=1000) as f:
        aws_kit.rotate(kafka, {"api_secret": "S2"})
        f.wait_for(lambda d: prop(d, "sasl.password") == "S2", timeout_s=5)
        assert f.docs and all(prop(d, "sasl.password") == "S2" for d in f.docs)


def test_throttling_mid_run_keeps_the_value_warns_once_and_recovers(
    aws_kit: AwsKit, control_file: Callable[..., ControlFile], caplog: pytest.LogCaptureFixture
) -> None:
    kafka = aws_kit.create("kafka", {"api_secret": "S1"})
    cf = doc_with(control_file, **{"sasl.password": aws_kit.ref(kafka, "api_secret")})
    with follow(cf.url, secrets_refresh_interval_ms=1000) as f, caplog.at_level(logging.WARNING, "kafkashim"):
        aws_kit.proxy.inject("ThrottlingException")
        time.sleep(2.5)
        assert prop(f.current, "sasl.password") == "S1" and f.docs == []
        warnings = [r.getMessage() for r in caplog.records if "ThrottlingException" in r.getMessage()]
        assert len(warnings) == 1 and "Rate exceeded (keeping the value read earlier)" in warnings[0], warnings
        assert aws_kit.proxy.injected >= 2
        aws_kit.proxy.inject(None)
        aws_kit.rotate(kafka, {"api_secret": "S2"})
        f.wait_for(lambda d: prop(d, "sasl.password") == "S2", timeout_s=5)


def test_throttling_at_start_fails_after_the_bounded_wait(
    aws_kit: AwsKit, control_file: Callable[..., ControlFile]
) -> None:
    kafka = aws_kit.create("kafka", {"api_secret": "S1"})
    cf = doc_with(control_file, **{"sasl.password": aws_kit.ref(kafka, "api_secret")})
    aws_kit.proxy.inject("ThrottlingException")
    started = time.monotonic()
    with pytest.raises(SecretBackendUnavailableError, match=r"ThrottlingException.*startup\.timeout\.ms=800"):
        start(cf.url, source_startup_timeout_ms=800)
    assert time.monotonic() - started >= 0.8


def test_access_denied_fails_at_once_with_the_iam_hint(
    aws_kit: AwsKit, control_file: Callable[..., ControlFile]
) -> None:
    kafka = aws_kit.create("kafka", {"api_secret": "S1"})
    cf = doc_with(control_file, **{"sasl.password": aws_kit.ref(kafka, "api_secret")})
    aws_kit.proxy.inject("AccessDeniedException", "GetSecretValue")
    with pytest.raises(SecretAccessDeniedError, match=r"AccessDeniedException.*check the IAM policy") as info:
        start(cf.url, source_startup_timeout_ms=10_000)
    assert info.value.path == "clusters.ccloud.sasl.password"
    assert info.value.reference == f"aws-sm:{kafka}#api_secret"


@pytest.mark.parametrize(
    ("make_ref", "message"),
    [
        (lambda kit, sid: kit.ref(f"{kit.prefix}/does-not-exist"), r"ResourceNotFoundException"),
        (lambda kit, sid: kit.ref(sid, "nope"), r"has no field 'nope' \(fields: api_secret\)"),
    ],
)
def test_an_unresolvable_aws_reference_is_rejected(
    aws_kit: AwsKit, control_file: Callable[..., ControlFile], make_ref: Callable[..., str], message: str
) -> None:
    sid = aws_kit.create("kafka", {"api_secret": "S1"})
    cf = doc_with(control_file, **{"sasl.password": make_ref(aws_kit, sid)})
    with pytest.raises(SecretNotFoundError, match=message):
        start(cf.url)


def test_a_field_of_a_secret_that_is_not_json_is_rejected(
    aws_kit: AwsKit, control_file: Callable[..., ControlFile]
) -> None:
    sid = aws_kit.create("plain", "just-a-string")
    cf = doc_with(control_file, **{"sasl.password": aws_kit.ref(sid, "field")})
    with pytest.raises(SecretNotFoundError, match=r"is not JSON, so it has no fields"):
        start(cf.url)
