"""Building the boto3 SQS client from the usual boto3 configuration.

Credentials, region and endpoint come from where boto3 always looks (arguments, then
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE``,
``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL_SQS``, ``~/.aws/config`` and ``credentials``,
instance roles), so a Conveyor application is configured like any other boto3 program. Only
what Conveyor must decide is set here: timeouts that outlast a 20 s long poll, a connection
pool as large as the receives that may run at once, and botocore's "standard" retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conveyor.core.errors import ConfigurationError
from conveyor_sqs.errors import Where

__all__ = ["ClientSettings", "open_client", "where_of"]

_LONG_POLL_SECONDS = 20


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """What identifies one SQS client; channels with equal settings share it.

    Attributes:
        endpoint_url: None for AWS itself (or ``AWS_ENDPOINT_URL_SQS``); a URL for an emulator.
        region: None for boto3's default region (``AWS_DEFAULT_REGION``, the profile's).
        profile: a profile of ``~/.aws/config``; None for boto3's default chain.
        max_pool_connections: HTTP connections kept; at least the receives that run at once.
        connect_timeout: seconds to open a connection before ``ConnectionFailed``.
        max_attempts: botocore's attempts per call (standard retry mode) on throttling and
            connection errors.
    """

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    max_pool_connections: int = 20
    connect_timeout: float = 5.0
    max_attempts: int = 3


def open_client(settings: ClientSettings) -> tuple[Any, Where]:
    """A boto3 SQS client and where it points (for error messages); imports boto3 now."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.session.Session(profile_name=settings.profile, region_name=settings.region)
    except BotoCoreError as error:  # an unknown profile
        raise ConfigurationError(
            f"cannot configure the SQS client: {error}. Name a profile that exists in "
            f"~/.aws/config, or leave profile=None."
        ) from None
    region = session.region_name
    if not region:
        raise ConfigurationError(
            "no AWS region for the SQS client: pass region='eu-west-1' (for example) to the "
            "channel, or set AWS_DEFAULT_REGION, or a region in the AWS profile."
        )
    config = Config(
        max_pool_connections=settings.max_pool_connections,
        connect_timeout=settings.connect_timeout,
        read_timeout=_LONG_POLL_SECONDS + 10,
        retries={"mode": "standard", "max_attempts": settings.max_attempts},
    )
    try:
        client = session.client("sqs", endpoint_url=settings.endpoint_url, config=config)
    except (ValueError, BotoCoreError) as error:
        raise ConfigurationError(
            f"cannot open an SQS client in region {region!r} for endpoint "
            f"{settings.endpoint_url!r}: {error}. Pass a URL such as 'http://127.0.0.1:4566', "
            f"or endpoint_url=None for AWS."
        ) from None
    return client, where_of(client, session.get_credentials())


def where_of(client: Any, credentials: Any = None) -> Where:
    """Where ``client`` points, with its credentials kept only to scrub them from errors.

    A client built by the application (``SqsTransport(client=...)``) carries its credentials on
    its request signer, botocore's only holder of them; they are read from there, when present,
    for the same scrubbing.
    """
    if credentials is None:
        signer = getattr(client, "_request_signer", None)
        credentials = getattr(signer, "_credentials", None)
    secrets: tuple[str, ...] = ()
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        secrets = tuple(s for s in (frozen.access_key, frozen.secret_key, frozen.token) if s)
    return Where(
        region=str(client.meta.region_name), endpoint=str(client.meta.endpoint_url), secrets=secrets
    )
