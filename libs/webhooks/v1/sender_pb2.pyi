from webhooks.v1 import messages_pb2 as _messages_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SendTestEventRequest(_message.Message):
    __slots__ = ("subscription_id", "trigger", "data_json")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    trigger: str
    data_json: bytes
    def __init__(self, subscription_id: _Optional[str] = ..., trigger: _Optional[str] = ..., data_json: _Optional[bytes] = ...) -> None: ...

class SendTestEventResponse(_message.Message):
    __slots__ = ("attempt",)
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    attempt: _messages_pb2.AttemptRecord
    def __init__(self, attempt: _Optional[_Union[_messages_pb2.AttemptRecord, _Mapping]] = ...) -> None: ...
