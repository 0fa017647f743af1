"""``${aws-sm:<secret-id>[#<json-field>]}``: AWS Secrets Manager, through boto3.

Wire calls (AWS Secrets Manager API reference):

- ``DescribeSecret(SecretId)``: which VersionId carries the AWSCURRENT stage now (no secret material);
- ``GetSecretValue(SecretId, VersionStage="AWSCURRENT")``: only when that VersionId is not the one held.

So a refresh costs one DescribeSecret while nothing rotated (if the IAM policy denies DescribeSecret, each
refresh reads the value instead), and a rotation (a new version moved to
AWSCURRENT by ``PutSecretValue`` or a rotation Lambda) is picked up by its VersionId at the next refresh,
the way aws-secretsmanager-caching-python detects it. Credentials and region come from boto3's standard
chain (environment, shared config, SSO, container and instance roles); ``AWS_ENDPOINT_URL_SECRETS_MANAGER``
points it at a VPC endpoint or a local emulator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Final

from kafkashim.control.references import Reference
from kafkashim.control.secrets.resolver import Secret, SecretBackend
from kafkashim.errors import (
    ConfigurationError,
    SecretAccessDeniedError,
    SecretBackendUnavailableError,
    SecretNotFoundError,
)
from kafkashim.telemetry import logger

# Error codes of the Secrets Manager API (and the AWS-wide auth ones) by what they mean for a reference.
_NOT_FOUND: Final = frozenset({"ResourceNotFoundException", "InvalidRequestException", "InvalidParameterException"})
_DENIED: Final = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "DecryptionFailure",  # the caller may not use the secret's KMS key
    }
)
_CURRENT: Final = "AWSCURRENT"


@contextlib.contextmanager
def map_errors(ref: Reference) -> Iterator[None]:
    """Turn botocore exceptions into `SecretError` subclasses by error code."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", "")).strip()
        detail = f"{code}: {message}" if message else code
        if code in _NOT_FOUND:
            raise SecretNotFoundError(f"{ref}: AWS Secrets Manager: {detail}", reference=ref.text) from None
        if code in _DENIED:
            raise SecretAccessDeniedError(
                f"{ref}: AWS Secrets Manager refused: {detail}; check the IAM policy and the KMS key policy",
                reference=ref.text,
            ) from None
        # Throttling, 5xx, anything else: transient; served from the last value while retried.
        raise SecretBackendUnavailableError(f"{ref}: AWS Secrets Manager: {detail}", reference=ref.text) from None
    except NoCredentialsError:
        raise SecretAccessDeniedError(
            f"{ref}: no AWS credentials found in boto3's standard chain (environment, profile, role)",
            reference=ref.text,
        ) from None
    except BotoCoreError as exc:
        raise SecretBackendUnavailableError(
            f"{ref}: cannot reach AWS Secrets Manager: {type(exc).__name__}", reference=ref.text
        ) from None


class AwsSecretsManagerBackend(SecretBackend):
    """One Secrets Manager client per control source."""

    scheme = "aws-sm"

    def __init__(self, client: Any = None) -> None:
        if client is None:
            try:
                import boto3
                from botocore.config import Config
                from botocore.exceptions import NoRegionError
            except ImportError:
                raise ConfigurationError(
                    "the control document refers to AWS Secrets Manager: install kafkashim[aws] (boto3)",
                    key="kafkashim.source",
                ) from None
            # One quick retry inside botocore; kafkashim's own back-off paces anything longer.
            config = Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=5, read_timeout=10)
            try:
                client = boto3.session.Session().client("secretsmanager", config=config)
            except NoRegionError:
                raise ConfigurationError(
                    "the control document refers to AWS Secrets Manager but no AWS region is configured; "
                    "set AWS_REGION (or a region in the AWS profile)",
                    key="AWS_REGION",
                ) from None
        self._client = client
        self._describe_allowed = True

    def __repr__(self) -> str:
        return f"AwsSecretsManagerBackend(region={self._client.meta.region_name!r})"

    def read(self, target: str, previous: Secret | None) -> Secret:
        ref = Reference("aws-sm", target)
        if previous is not None and previous.version and self._describe_allowed:
            try:
                with map_errors(ref):
                    stages = self._client.describe_secret(SecretId=target).get("VersionIdsToStages", {})
                if _CURRENT in stages.get(previous.version, ()):
                    return previous  # not rotated: no secret material fetched
            except SecretAccessDeniedError:
                # Many policies grant only GetSecretValue; reading the value each refresh works as well.
                self._describe_allowed = False
                logger.info(
                    "kafkashim: secretsmanager:DescribeSecret is not allowed; refreshes read the secret value "
                    "instead (grant DescribeSecret to check for rotation without fetching secret material)"
                )
        with map_errors(ref):
            response = self._client.get_secret_value(SecretId=target, VersionStage=_CURRENT)
        if "SecretString" not in response:
            raise SecretNotFoundError(
                f"{ref}: the secret is binary (SecretBinary); kafkashim reads SecretString secrets", reference=ref.text
            )
        return Secret(payload=str(response["SecretString"]), version=str(response.get("VersionId", "")))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()
