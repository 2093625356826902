import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from webhooks.v1 import messages_pb2 as _messages_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PublishStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUBLISH_STATUS_UNSPECIFIED: _ClassVar[PublishStatus]
    PUBLISH_STATUS_ACCEPTED: _ClassVar[PublishStatus]
    PUBLISH_STATUS_DUPLICATE: _ClassVar[PublishStatus]
    PUBLISH_STATUS_REJECTED: _ClassVar[PublishStatus]
PUBLISH_STATUS_UNSPECIFIED: PublishStatus
PUBLISH_STATUS_ACCEPTED: PublishStatus
PUBLISH_STATUS_DUPLICATE: PublishStatus
PUBLISH_STATUS_REJECTED: PublishStatus

class PublishEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_messages_pb2.PlatformEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[_messages_pb2.PlatformEvent, _Mapping]]] = ...) -> None: ...

class PublishResult(_message.Message):
    __slots__ = ("event_id", "status", "field", "reason")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    status: PublishStatus
    field: str
    reason: str
    def __init__(self, event_id: _Optional[str] = ..., status: _Optional[_Union[PublishStatus, str]] = ..., field: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PublishEventsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[PublishResult]
    def __init__(self, results: _Optional[_Iterable[_Union[PublishResult, _Mapping]]] = ...) -> None: ...

class ReplayEventsRequest(_message.Message):
    __slots__ = ("subscription_id", "since", "until", "dry_run")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    dry_run: bool
    def __init__(self, subscription_id: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class ReplayProgress(_message.Message):
    __slots__ = ("replay_id", "scanned_events", "matched_events", "published_jobs", "reached", "done")
    REPLAY_ID_FIELD_NUMBER: _ClassVar[int]
    SCANNED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    MATCHED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_JOBS_FIELD_NUMBER: _ClassVar[int]
    REACHED_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    replay_id: str
    scanned_events: int
    matched_events: int
    published_jobs: int
    reached: _timestamp_pb2.Timestamp
    done: bool
    def __init__(self, replay_id: _Optional[str] = ..., scanned_events: _Optional[int] = ..., matched_events: _Optional[int] = ..., published_jobs: _Optional[int] = ..., reached: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., done: _Optional[bool] = ...) -> None: ...
