"""The names of the failure classes (``FailureClass``) as people and filters see them.

One name per class, the enum's without its prefix, lower case (``FAILURE_CLASS_TIMEOUT``
→ ``timeout``): the failures view's ``error_code`` of a failure without an HTTP status,
the ``--error-code`` filter, the sender's ``error.type`` span attribute, the CLI and the
console all show this name.
"""

from __future__ import annotations

from webhooks.v1 import messages_pb2

_UNSPECIFIED = messages_pb2.FAILURE_CLASS_UNSPECIFIED


def failure_name(failure_class: int) -> str:
    """``FAILURE_CLASS_TIMEOUT`` → ``timeout``; "" for UNSPECIFIED."""
    if failure_class == _UNSPECIFIED:
        return ""
    name: str = messages_pb2.FailureClass.Name(failure_class)  # type: ignore[arg-type]
    return name.removeprefix("FAILURE_CLASS_").lower()
