"""Translation of botocore's exceptions into Conveyor's errors (DESIGN rule 8).

No botocore exception leaves this package: the kernel and the user see a
:class:`~conveyor.core.errors.TransportError` naming the queue, the region and the endpoint,
what was being done and how to fix it. Credentials are never named: AWS's own message is kept
only for errors that cannot concern them, and any credential text is scrubbed from it. The
original exception stays chained as ``__cause__``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from conveyor.core.errors import (
    ChannelNotFound,
    ConfigurationError,
    ConnectionFailed,
    StaleReceipt,
    TransportError,
)

__all__ = ["Where", "translate"]

_MISSING_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
_CREDENTIALS = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "IncompleteSignature",
    "ExpiredToken",
    "ExpiredTokenException",
    "MissingAuthenticationToken",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "AuthorizationError"}
_STALE = {"ReceiptHandleIsInvalid", "MessageNotInflight", "InvalidReceiptHandle"}
_THROTTLED = {"RequestThrottled", "Throttling", "ThrottlingException", "OverLimit"}
# AWS access key ids (long-term AKIA, temporary ASIA, ...): AWS's own messages may quote them.
_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|APKA)[A-Z0-9]{12,}\b")


@dataclass(frozen=True, slots=True)
class Where:
    """Where a call went, for error messages: never credentials."""

    region: str
    endpoint: str
    secrets: tuple[str, ...] = ()

    def queue(self, name: str) -> str:
        return f"SQS queue {name!r} in region {self.region!r} at {self.endpoint}"

    def scrub(self, text: str) -> str:
        """``text`` without the client's secrets, nor anything shaped like an access key id."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return _KEY_ID.sub("***", text)


def translate(error: Exception, *, where: Where, queue: str, action: str) -> TransportError:
    """The Conveyor error for ``error``, raised while doing ``action`` on ``queue``.

    Args:
        error: what botocore raised.
        where: the region and endpoint of the client.
        queue: the queue's name (not its URL: the URL carries the account id).
        action: what was being done, as a phrase ("sending to channel 'orders'").
    """
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    target = where.queue(queue)
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return ConfigurationError(  # type: ignore[return-value]
            f"no usable AWS credentials for {target} while {action}. Configure them the usual "
            f"boto3 way: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
            f"~/.aws/credentials, or an instance role."
        )
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError):
        return ConnectionFailed(
            f"cannot reach {target} while {action}: the connection failed. Check the endpoint "
            f"(endpoint_url or AWS_ENDPOINT_URL_SQS) and the network; for a local emulator, that "
            f"it is running."
        )
    if isinstance(error, ReadTimeoutError):
        return ConnectionFailed(
            f"{target} did not answer in time while {action}. The connection may be lost; "
            f"Conveyor receives the message again if it was not acknowledged."
        )
    if not isinstance(error, ClientError):
        return TransportError(
            f"SQS failed on {target} while {action}: {where.scrub(type(error).__name__)}: "
            f"{where.scrub(str(error))}"
        )
    code = str(error.response.get("Error", {}).get("Code", ""))
    detail = where.scrub(str(error.response.get("Error", {}).get("Message", "")))
    if code in _MISSING_QUEUE:
        return ChannelNotFound(
            f"{target} does not exist (while {action}). Declare the channel first (building a "
            f"Messaging does), or check the region and queue_prefix."
        )
    if code in _CREDENTIALS:
        return ConnectionFailed(
            f"AWS refused the credentials for {target} while {action} ({code}). Check the "
            f"access key and secret (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...) and that they belong "
            f"to this region's account."
        )
    if code in _DENIED:
        return ConnectionFailed(
            f"access denied to {target} while {action} ({code}). Grant the credentials' IAM "
            f"identity the sqs:* actions Conveyor uses on this queue."
        )
    if code in _STALE:
        return StaleReceipt(
            f"the lease on a message of {target} no longer holds ({code}) while {action}: its "
            f"visibility timeout ran out and it was received again, or it was settled already. "
            f"Pass a longer lease, and keep handlers idempotent."
        )
    if code in _THROTTLED:
        return ConnectionFailed(
            f"SQS throttled requests to {target} while {action} ({code}): {detail}. Slow down "
            f"or raise the account's quota."
        )
    if code == "QueueAlreadyExists":
        return ConfigurationError(  # type: ignore[return-value]
            f"{target} exists with attributes other than the ones Conveyor asked for while "
            f"{action}: {detail}. Change the queue's attributes, or the channel's options, so "
            f"they agree."
        )
    return TransportError(f"SQS failed on {target} while {action} ({code}): {detail}")
