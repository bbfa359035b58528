"""Every failure of the SQS adapter is a Conveyor error naming the queue and the region, never keys.

An endpoint nobody listens on, a queue that does not exist (and may not be created), no
region, an unknown profile, credentials AWS refuses and a receipt whose lease ran out. The
access key and secret are distinctive strings here, so the tests can show that no message
carries them. AWS's refusals are played by botocore's ``Stubber`` (moto accepts any key).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from conveyor import Messaging, SystemClock
from conveyor.core.errors import (
    ChannelNotFound,
    ConfigurationError,
    ConnectionFailed,
    ConveyorError,
    StaleReceipt,
    TransportError,
)
from conveyor.transports.seam import ChannelOptions, Delivery, WireMessage
from conveyor_sqs import ClientSettings, SqsChannel, SqsTransport

KEY_ID = "AKIAKEYNEVERPRINTED"
SECRET = "secret-never-printed-0123456789"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch, sqs_endpoint: str) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")


def assert_clean(error: BaseException) -> None:
    text = str(error)
    assert KEY_ID not in text
    assert SECRET not in text
    assert "region 'eu-west-3'" in text


def test_an_endpoint_nobody_listens_on_fails_bootstrap_naming_queue_and_region(
    keys: None,
) -> None:
    channel = SqsChannel("orders", endpoint_url="http://127.0.0.1:9", queue_prefix="shop-")

    with pytest.raises(ConnectionFailed) as raised:
        Messaging(channels=[channel], clock=SystemClock())

    assert_clean(raised.value)
    assert "SQS queue 'shop-orders'" in str(raised.value)
    assert "http://127.0.0.1:9" in str(raised.value)
    assert "while declaring channel 'orders'" in str(raised.value)


def test_a_queue_that_does_not_exist_and_may_not_be_created_is_channel_not_found(
    keys: None, sqs_endpoint: str, unique: Callable[[str], str]
) -> None:
    name = unique("missing")
    channel = SqsChannel(name, endpoint_url=sqs_endpoint, create_queue=False)

    with pytest.raises(ChannelNotFound) as raised:
        Messaging(channels=[channel], clock=SystemClock())

    assert_clean(raised.value)
    assert f"SQS queue {name!r}" in str(raised.value)
    assert "does not exist" in str(raised.value)


def test_no_region_is_a_configuration_error_saying_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))

    with pytest.raises(ConfigurationError, match="no AWS region"):
        SqsTransport(clock=SystemClock(), settings=ClientSettings(endpoint_url="http://x:1"))


def test_an_unknown_profile_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))

    with pytest.raises(ConfigurationError, match="Name a profile that exists"):
        SqsTransport(clock=SystemClock(), settings=ClientSettings(profile="nobody"))


def stubbed(answer_declare: bool = True) -> tuple[Any, Any]:
    """A real boto3 client whose answers are played by a ``Stubber``."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client(
        "sqs",
        region_name="eu-west-3",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        endpoint_url="http://sqs.invalid",
    )
    stubber = Stubber(client)
    if answer_declare:
        url = "http://sqs.invalid/123456789012/orders"
        stubber.add_response("create_queue", {"QueueUrl": url})
        stubber.add_response(
            "get_queue_attributes", {"Attributes": {"MaximumMessageSize": "262144"}}
        )
    stubber.activate()
    return client, stubber


@pytest.mark.parametrize(
    ("code", "kind", "says"),
    [
        ("InvalidClientTokenId", ConnectionFailed, "refused the credentials"),
        ("SignatureDoesNotMatch", ConnectionFailed, "refused the credentials"),
        ("AccessDenied", ConnectionFailed, "access denied"),
        ("RequestThrottled", ConnectionFailed, "throttled"),
        ("InternalError", TransportError, "SQS failed"),
    ],
)
def test_aws_refusals_name_queue_and_region_never_keys(
    code: str, kind: type[ConveyorError], says: str
) -> None:
    client, stubber = stubbed()
    stubber.add_client_error(
        "send_message",
        service_error_code=code,
        service_message=f"refused for {KEY_ID} signed with {SECRET}",
        http_status_code=403,
    )
    transport = SqsTransport(clock=SystemClock(), client=client)
    transport.declare(ChannelOptions("orders"))

    with pytest.raises(kind) as raised:
        transport.send("orders", WireMessage(b"{}"))

    assert says in str(raised.value)
    assert "SQS queue 'orders' in region 'eu-west-3'" in str(raised.value)
    assert "while sending to channel 'orders'" in str(raised.value)
    assert "123456789012" not in str(raised.value)  # the queue URL holds the account id
    assert KEY_ID not in str(raised.value)
    assert SECRET not in str(raised.value)
    assert raised.value.__cause__ is not None  # the client's error stays chained


def test_an_ack_whose_lease_ran_out_is_a_stale_receipt(
    transport: SqsTransport, unique: Callable[[str], str]
) -> None:
    channel = unique("stale")
    transport.declare(ChannelOptions(channel))
    made_up = Delivery(channel, WireMessage(b"x"), "not-a-receipt-handle", 1)

    with pytest.raises(StaleReceipt, match="no longer holds"):
        transport.renew(made_up, lease=timedelta(seconds=5))


def test_every_verb_after_close_raises_transport_closed(
    settings: ClientSettings, unique: Callable[[str], str]
) -> None:
    from conveyor.core.errors import TransportClosed

    transport = SqsTransport(clock=SystemClock(), settings=settings)
    channel = unique("closed")
    transport.declare(ChannelOptions(channel))
    transport.close()
    transport.close()  # closing again is allowed

    delivery = Delivery(channel, WireMessage(b"x"), "r", 1)
    for call in (
        lambda: transport.declare(ChannelOptions(channel)),
        lambda: transport.send(channel, WireMessage(b"x")),
        lambda: transport.receive(channel, lease=timedelta(seconds=1)),
        lambda: transport.ack(delivery),
        lambda: transport.release(delivery),
        lambda: transport.renew(delivery, lease=timedelta(seconds=1)),
    ):
        with pytest.raises(TransportClosed, match="region 'us-east-1'"):
            call()
