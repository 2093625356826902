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

class FailedEventState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILED_EVENT_STATE_UNSPECIFIED: _ClassVar[FailedEventState]
    FAILED_EVENT_STATE_RETRYING: _ClassVar[FailedEventState]
    FAILED_EVENT_STATE_FAILED: _ClassVar[FailedEventState]
    FAILED_EVENT_STATE_RECOVERED: _ClassVar[FailedEventState]
    FAILED_EVENT_STATE_REDELIVERED: _ClassVar[FailedEventState]
FAILED_EVENT_STATE_UNSPECIFIED: FailedEventState
FAILED_EVENT_STATE_RETRYING: FailedEventState
FAILED_EVENT_STATE_FAILED: FailedEventState
FAILED_EVENT_STATE_RECOVERED: FailedEventState
FAILED_EVENT_STATE_REDELIVERED: FailedEventState

class FailedEvent(_message.Message):
    __slots__ = ("delivery_id", "tenant", "subscription_id", "subscription_name", "entity", "trigger", "channel", "subchannel", "last_attempt_at", "error_code", "status_code", "failure_class", "error_message", "retry_attempts", "state", "event_id")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_NAME_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SUBCHANNEL_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_CLASS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRY_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    tenant: str
    subscription_id: str
    subscription_name: str
    entity: str
    trigger: str
    channel: int
    subchannel: str
    last_attempt_at: _timestamp_pb2.Timestamp
    error_code: str
    status_code: int
    failure_class: _messages_pb2.FailureClass
    error_message: str
    retry_attempts: int
    state: FailedEventState
    event_id: str
    def __init__(self, delivery_id: _Optional[str] = ..., tenant: _Optional[str] = ..., subscription_id: _Optional[str] = ..., subscription_name: _Optional[str] = ..., entity: _Optional[str] = ..., trigger: _Optional[str] = ..., channel: _Optional[int] = ..., subchannel: _Optional[str] = ..., last_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error_code: _Optional[str] = ..., status_code: _Optional[int] = ..., failure_class: _Optional[_Union[_messages_pb2.FailureClass, str]] = ..., error_message: _Optional[str] = ..., retry_attempts: _Optional[int] = ..., state: _Optional[_Union[FailedEventState, str]] = ..., event_id: _Optional[str] = ...) -> None: ...

class FailedEventFilter(_message.Message):
    __slots__ = ("subscription_ids", "entity", "trigger", "channel", "subchannel", "error_codes", "states", "since", "until", "message_contains", "min_retry_attempts")
    SUBSCRIPTION_IDS_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SUBCHANNEL_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODES_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    MIN_RETRY_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    subscription_ids: _containers.RepeatedScalarFieldContainer[str]
    entity: str
    trigger: str
    channel: int
    subchannel: str
    error_codes: _containers.RepeatedScalarFieldContainer[str]
    states: _containers.RepeatedScalarFieldContainer[FailedEventState]
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    message_contains: str
    min_retry_attempts: int
    def __init__(self, subscription_ids: _Optional[_Iterable[str]] = ..., entity: _Optional[str] = ..., trigger: _Optional[str] = ..., channel: _Optional[int] = ..., subchannel: _Optional[str] = ..., error_codes: _Optional[_Iterable[str]] = ..., states: _Optional[_Iterable[_Union[FailedEventState, str]]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message_contains: _Optional[str] = ..., min_retry_attempts: _Optional[int] = ...) -> None: ...

class ListFailedEventsRequest(_message.Message):
    __slots__ = ("filter", "page_size", "page_token")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    filter: FailedEventFilter
    page_size: int
    page_token: str
    def __init__(self, filter: _Optional[_Union[FailedEventFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFailedEventsResponse(_message.Message):
    __slots__ = ("failed_events", "next_page_token")
    FAILED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    failed_events: _containers.RepeatedCompositeFieldContainer[FailedEvent]
    next_page_token: str
    def __init__(self, failed_events: _Optional[_Iterable[_Union[FailedEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetFailedEventRequest(_message.Message):
    __slots__ = ("delivery_id",)
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    def __init__(self, delivery_id: _Optional[str] = ...) -> None: ...

class FailedEventDetails(_message.Message):
    __slots__ = ("overview", "payload", "payload_content_type", "trial_history")
    OVERVIEW_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TRIAL_HISTORY_FIELD_NUMBER: _ClassVar[int]
    overview: FailedEvent
    payload: bytes
    payload_content_type: str
    trial_history: _containers.RepeatedCompositeFieldContainer[_messages_pb2.AttemptRecord]
    def __init__(self, overview: _Optional[_Union[FailedEvent, _Mapping]] = ..., payload: _Optional[bytes] = ..., payload_content_type: _Optional[str] = ..., trial_history: _Optional[_Iterable[_Union[_messages_pb2.AttemptRecord, _Mapping]]] = ...) -> None: ...

class CountFailuresRequest(_message.Message):
    __slots__ = ("subscription_ids",)
    SUBSCRIPTION_IDS_FIELD_NUMBER: _ClassVar[int]
    subscription_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, subscription_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SubscriptionFailureCount(_message.Message):
    __slots__ = ("subscription_id", "failed_attempts", "failed_events")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    FAILED_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FAILED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    failed_attempts: int
    failed_events: int
    def __init__(self, subscription_id: _Optional[str] = ..., failed_attempts: _Optional[int] = ..., failed_events: _Optional[int] = ...) -> None: ...

class CountFailuresResponse(_message.Message):
    __slots__ = ("counts",)
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedCompositeFieldContainer[SubscriptionFailureCount]
    def __init__(self, counts: _Optional[_Iterable[_Union[SubscriptionFailureCount, _Mapping]]] = ...) -> None: ...

class RedeliverFailedEventsRequest(_message.Message):
    __slots__ = ("delivery_id", "filter", "dry_run")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    filter: FailedEventFilter
    dry_run: bool
    def __init__(self, delivery_id: _Optional[str] = ..., filter: _Optional[_Union[FailedEventFilter, _Mapping]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class RedeliverFailedEventsResponse(_message.Message):
    __slots__ = ("matched", "redelivered", "delivery_ids")
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    REDELIVERED_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_IDS_FIELD_NUMBER: _ClassVar[int]
    matched: int
    redelivered: int
    delivery_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, matched: _Optional[int] = ..., redelivered: _Optional[int] = ..., delivery_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RebuildReadModelRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RebuildReadModelResponse(_message.Message):
    __slots__ = ("applied_attempts", "failed_events")
    APPLIED_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FAILED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    applied_attempts: int
    failed_events: int
    def __init__(self, applied_attempts: _Optional[int] = ..., failed_events: _Optional[int] = ...) -> None: ...

class ListDeadLettersRequest(_message.Message):
    __slots__ = ("component", "reason", "limit", "page_token")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    component: str
    reason: str
    limit: int
    page_token: str
    def __init__(self, component: _Optional[str] = ..., reason: _Optional[str] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListedDeadLetter(_message.Message):
    __slots__ = ("sequence", "letter")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LETTER_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    letter: _messages_pb2.DeadLetter
    def __init__(self, sequence: _Optional[int] = ..., letter: _Optional[_Union[_messages_pb2.DeadLetter, _Mapping]] = ...) -> None: ...

class ListDeadLettersResponse(_message.Message):
    __slots__ = ("dead_letters", "next_page_token")
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dead_letters: _containers.RepeatedCompositeFieldContainer[ListedDeadLetter]
    next_page_token: str
    def __init__(self, dead_letters: _Optional[_Iterable[_Union[ListedDeadLetter, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
