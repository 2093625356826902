import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from webhooks.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AttemptOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTEMPT_OUTCOME_UNSPECIFIED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_SUCCEEDED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_FAILED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_REDELIVERY_REQUESTED: _ClassVar[AttemptOutcome]

class FailureClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_CLASS_UNSPECIFIED: _ClassVar[FailureClass]
    FAILURE_CLASS_HTTP_STATUS: _ClassVar[FailureClass]
    FAILURE_CLASS_TIMEOUT: _ClassVar[FailureClass]
    FAILURE_CLASS_DNS: _ClassVar[FailureClass]
    FAILURE_CLASS_CONNECT: _ClassVar[FailureClass]
    FAILURE_CLASS_TLS: _ClassVar[FailureClass]
    FAILURE_CLASS_SOAP_FAULT: _ClassVar[FailureClass]
    FAILURE_CLASS_OAUTH_TOKEN: _ClassVar[FailureClass]
    FAILURE_CLASS_BLOCKED_DESTINATION: _ClassVar[FailureClass]
    FAILURE_CLASS_SUBSCRIPTION_GONE: _ClassVar[FailureClass]
    FAILURE_CLASS_CONFIGURATION: _ClassVar[FailureClass]
ATTEMPT_OUTCOME_UNSPECIFIED: AttemptOutcome
ATTEMPT_OUTCOME_SUCCEEDED: AttemptOutcome
ATTEMPT_OUTCOME_FAILED: AttemptOutcome
ATTEMPT_OUTCOME_REDELIVERY_REQUESTED: AttemptOutcome
FAILURE_CLASS_UNSPECIFIED: FailureClass
FAILURE_CLASS_HTTP_STATUS: FailureClass
FAILURE_CLASS_TIMEOUT: FailureClass
FAILURE_CLASS_DNS: FailureClass
FAILURE_CLASS_CONNECT: FailureClass
FAILURE_CLASS_TLS: FailureClass
FAILURE_CLASS_SOAP_FAULT: FailureClass
FAILURE_CLASS_OAUTH_TOKEN: FailureClass
FAILURE_CLASS_BLOCKED_DESTINATION: FailureClass
FAILURE_CLASS_SUBSCRIPTION_GONE: FailureClass
FAILURE_CLASS_CONFIGURATION: FailureClass

class SubscriptionState(_message.Message):
    __slots__ = ("id", "tenant", "name", "entity", "triggers", "include_complete_data", "webhook", "authentication", "retry_policy", "active", "deleted", "created_at", "updated_at", "version", "signing_secret", "previous_signing_secret", "previous_valid_until")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_COMPLETE_DATA_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATION_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SECRET_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SIGNING_SECRET_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    name: str
    entity: str
    triggers: _containers.RepeatedCompositeFieldContainer[_common_pb2.TriggerSpec]
    include_complete_data: bool
    webhook: _common_pb2.Webhook
    authentication: _common_pb2.Authentication
    retry_policy: _common_pb2.RetryPolicy
    active: bool
    deleted: bool
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    version: int
    signing_secret: str
    previous_signing_secret: str
    previous_valid_until: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., name: _Optional[str] = ..., entity: _Optional[str] = ..., triggers: _Optional[_Iterable[_Union[_common_pb2.TriggerSpec, _Mapping]]] = ..., include_complete_data: _Optional[bool] = ..., webhook: _Optional[_Union[_common_pb2.Webhook, _Mapping]] = ..., authentication: _Optional[_Union[_common_pb2.Authentication, _Mapping]] = ..., retry_policy: _Optional[_Union[_common_pb2.RetryPolicy, _Mapping]] = ..., active: _Optional[bool] = ..., deleted: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ..., signing_secret: _Optional[str] = ..., previous_signing_secret: _Optional[str] = ..., previous_valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CertificateState(_message.Message):
    __slots__ = ("id", "tenant", "name", "certificate_pem", "private_key", "not_after", "deleted", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_KEY_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    name: str
    certificate_pem: str
    private_key: str
    not_after: _timestamp_pb2.Timestamp
    deleted: bool
    version: int
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., name: _Optional[str] = ..., certificate_pem: _Optional[str] = ..., private_key: _Optional[str] = ..., not_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deleted: _Optional[bool] = ..., version: _Optional[int] = ...) -> None: ...

class SubscriptionDomainEvent(_message.Message):
    __slots__ = ("notification_id", "event_type", "occurred_at", "subscription", "certificate")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    notification_id: int
    event_type: str
    occurred_at: _timestamp_pb2.Timestamp
    subscription: SubscriptionState
    certificate: CertificateState
    def __init__(self, notification_id: _Optional[int] = ..., event_type: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., subscription: _Optional[_Union[SubscriptionState, _Mapping]] = ..., certificate: _Optional[_Union[CertificateState, _Mapping]] = ...) -> None: ...

class PlatformEvent(_message.Message):
    __slots__ = ("event_id", "tenant", "entity", "trigger", "occurred_at", "channel", "subchannel", "activity_type", "status_change", "whatsapp_channel", "whatsapp_status", "data_json")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SUBCHANNEL_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_CHANGE_FIELD_NUMBER: _ClassVar[int]
    WHATSAPP_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    WHATSAPP_STATUS_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    tenant: str
    entity: str
    trigger: str
    occurred_at: _timestamp_pb2.Timestamp
    channel: int
    subchannel: str
    activity_type: int
    status_change: _common_pb2.StatusChange
    whatsapp_channel: str
    whatsapp_status: str
    data_json: bytes
    def __init__(self, event_id: _Optional[str] = ..., tenant: _Optional[str] = ..., entity: _Optional[str] = ..., trigger: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., channel: _Optional[int] = ..., subchannel: _Optional[str] = ..., activity_type: _Optional[int] = ..., status_change: _Optional[_Union[_common_pb2.StatusChange, _Mapping]] = ..., whatsapp_channel: _Optional[str] = ..., whatsapp_status: _Optional[str] = ..., data_json: _Optional[bytes] = ...) -> None: ...

class DeliveryJob(_message.Message):
    __slots__ = ("job_id", "delivery_id", "event_id", "tenant", "subscription_id", "subscription_version", "subscription_name", "entity", "trigger", "channel", "subchannel", "occurred_at", "payload_json", "attempt", "replay", "manual", "series", "trace_context", "first_attempt_at")
    class TraceContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_VERSION_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_NAME_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SUBCHANNEL_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    MANUAL_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    FIRST_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    delivery_id: str
    event_id: str
    tenant: str
    subscription_id: str
    subscription_version: int
    subscription_name: str
    entity: str
    trigger: str
    channel: int
    subchannel: str
    occurred_at: _timestamp_pb2.Timestamp
    payload_json: bytes
    attempt: int
    replay: bool
    manual: bool
    series: int
    trace_context: _containers.ScalarMap[str, str]
    first_attempt_at: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., delivery_id: _Optional[str] = ..., event_id: _Optional[str] = ..., tenant: _Optional[str] = ..., subscription_id: _Optional[str] = ..., subscription_version: _Optional[int] = ..., subscription_name: _Optional[str] = ..., entity: _Optional[str] = ..., trigger: _Optional[str] = ..., channel: _Optional[int] = ..., subchannel: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payload_json: _Optional[bytes] = ..., attempt: _Optional[int] = ..., replay: _Optional[bool] = ..., manual: _Optional[bool] = ..., series: _Optional[int] = ..., trace_context: _Optional[_Mapping[str, str]] = ..., first_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AttemptRecord(_message.Message):
    __slots__ = ("delivery_id", "series", "attempt", "tenant", "subscription_id", "subscription_name", "event_id", "entity", "trigger", "channel", "subchannel", "started_at", "duration_ms", "outcome", "failure_class", "status_code", "error_message", "response_snippet", "request_body", "request_content_type", "will_retry", "next_attempt_at", "max_attempts", "manual", "replay", "url", "payload_json", "occurred_at", "subscription_version", "requested_by")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SUBCHANNEL_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    FAILURE_CLASS_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_SNIPPET_FIELD_NUMBER: _ClassVar[int]
    REQUEST_BODY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    WILL_RETRY_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    MANUAL_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    series: int
    attempt: int
    tenant: str
    subscription_id: str
    subscription_name: str
    event_id: str
    entity: str
    trigger: str
    channel: int
    subchannel: str
    started_at: _timestamp_pb2.Timestamp
    duration_ms: int
    outcome: AttemptOutcome
    failure_class: FailureClass
    status_code: int
    error_message: str
    response_snippet: bytes
    request_body: bytes
    request_content_type: str
    will_retry: bool
    next_attempt_at: _timestamp_pb2.Timestamp
    max_attempts: int
    manual: bool
    replay: bool
    url: str
    payload_json: bytes
    occurred_at: _timestamp_pb2.Timestamp
    subscription_version: int
    requested_by: str
    def __init__(self, delivery_id: _Optional[str] = ..., series: _Optional[int] = ..., attempt: _Optional[int] = ..., tenant: _Optional[str] = ..., subscription_id: _Optional[str] = ..., subscription_name: _Optional[str] = ..., event_id: _Optional[str] = ..., entity: _Optional[str] = ..., trigger: _Optional[str] = ..., channel: _Optional[int] = ..., subchannel: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_ms: _Optional[int] = ..., outcome: _Optional[_Union[AttemptOutcome, str]] = ..., failure_class: _Optional[_Union[FailureClass, str]] = ..., status_code: _Optional[int] = ..., error_message: _Optional[str] = ..., response_snippet: _Optional[bytes] = ..., request_body: _Optional[bytes] = ..., request_content_type: _Optional[str] = ..., will_retry: _Optional[bool] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_attempts: _Optional[int] = ..., manual: _Optional[bool] = ..., replay: _Optional[bool] = ..., url: _Optional[str] = ..., payload_json: _Optional[bytes] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., subscription_version: _Optional[int] = ..., requested_by: _Optional[str] = ...) -> None: ...

class EndpointHealth(_message.Message):
    __slots__ = ("tenant", "subscription_id", "health", "streak_attempts", "circuit_opened_at", "cooldown_seconds", "probe_started_at", "throttle_seconds", "failing_announced", "circuit_announced", "exhausted_announced_at", "disabled_at", "subscription_version")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    STREAK_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    COOLDOWN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROBE_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    THROTTLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FAILING_ANNOUNCED_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_ANNOUNCED_FIELD_NUMBER: _ClassVar[int]
    EXHAUSTED_ANNOUNCED_AT_FIELD_NUMBER: _ClassVar[int]
    DISABLED_AT_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_VERSION_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    subscription_id: str
    health: _common_pb2.Health
    streak_attempts: int
    circuit_opened_at: _timestamp_pb2.Timestamp
    cooldown_seconds: int
    probe_started_at: _timestamp_pb2.Timestamp
    throttle_seconds: int
    failing_announced: bool
    circuit_announced: bool
    exhausted_announced_at: _timestamp_pb2.Timestamp
    disabled_at: _timestamp_pb2.Timestamp
    subscription_version: int
    def __init__(self, tenant: _Optional[str] = ..., subscription_id: _Optional[str] = ..., health: _Optional[_Union[_common_pb2.Health, _Mapping]] = ..., streak_attempts: _Optional[int] = ..., circuit_opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cooldown_seconds: _Optional[int] = ..., probe_started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., throttle_seconds: _Optional[int] = ..., failing_announced: _Optional[bool] = ..., circuit_announced: _Optional[bool] = ..., exhausted_announced_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., disabled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., subscription_version: _Optional[int] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("subject", "data", "headers", "reason", "terminated_at", "component", "detail", "stream", "stream_sequence", "notification_id", "data_size")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TERMINATED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    STREAM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_SIZE_FIELD_NUMBER: _ClassVar[int]
    subject: str
    data: bytes
    headers: _containers.ScalarMap[str, str]
    reason: str
    terminated_at: _timestamp_pb2.Timestamp
    component: str
    detail: str
    stream: str
    stream_sequence: int
    notification_id: int
    data_size: int
    def __init__(self, subject: _Optional[str] = ..., data: _Optional[bytes] = ..., headers: _Optional[_Mapping[str, str]] = ..., reason: _Optional[str] = ..., terminated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., component: _Optional[str] = ..., detail: _Optional[str] = ..., stream: _Optional[str] = ..., stream_sequence: _Optional[int] = ..., notification_id: _Optional[int] = ..., data_size: _Optional[int] = ...) -> None: ...
