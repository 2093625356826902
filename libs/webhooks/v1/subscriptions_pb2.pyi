import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from webhooks.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubscriptionOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUBSCRIPTION_ORDER_UNSPECIFIED: _ClassVar[SubscriptionOrder]
    SUBSCRIPTION_ORDER_CREATED_DESC: _ClassVar[SubscriptionOrder]
    SUBSCRIPTION_ORDER_CREATED_ASC: _ClassVar[SubscriptionOrder]
    SUBSCRIPTION_ORDER_NAME_ASC: _ClassVar[SubscriptionOrder]
    SUBSCRIPTION_ORDER_UPDATED_DESC: _ClassVar[SubscriptionOrder]
SUBSCRIPTION_ORDER_UNSPECIFIED: SubscriptionOrder
SUBSCRIPTION_ORDER_CREATED_DESC: SubscriptionOrder
SUBSCRIPTION_ORDER_CREATED_ASC: SubscriptionOrder
SUBSCRIPTION_ORDER_NAME_ASC: SubscriptionOrder
SUBSCRIPTION_ORDER_UPDATED_DESC: SubscriptionOrder

class SubscriptionSpec(_message.Message):
    __slots__ = ("name", "entity", "triggers", "include_complete_data", "webhook", "authentication", "retry_policy")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_COMPLETE_DATA_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATION_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    name: str
    entity: str
    triggers: _containers.RepeatedCompositeFieldContainer[_common_pb2.TriggerSpec]
    include_complete_data: bool
    webhook: _common_pb2.Webhook
    authentication: _common_pb2.Authentication
    retry_policy: _common_pb2.RetryPolicy
    def __init__(self, name: _Optional[str] = ..., entity: _Optional[str] = ..., triggers: _Optional[_Iterable[_Union[_common_pb2.TriggerSpec, _Mapping]]] = ..., include_complete_data: _Optional[bool] = ..., webhook: _Optional[_Union[_common_pb2.Webhook, _Mapping]] = ..., authentication: _Optional[_Union[_common_pb2.Authentication, _Mapping]] = ..., retry_policy: _Optional[_Union[_common_pb2.RetryPolicy, _Mapping]] = ...) -> None: ...

class SigningSecretInfo(_message.Message):
    __slots__ = ("set", "rotated_at", "previous_valid_until")
    SET_FIELD_NUMBER: _ClassVar[int]
    ROTATED_AT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    set: bool
    rotated_at: _timestamp_pb2.Timestamp
    previous_valid_until: _timestamp_pb2.Timestamp
    def __init__(self, set: _Optional[bool] = ..., rotated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., previous_valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Subscription(_message.Message):
    __slots__ = ("id", "tenant", "name", "entity", "triggers", "include_complete_data", "webhook", "authentication", "retry_policy", "active", "created_at", "updated_at", "version", "signing_secret", "health")
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
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SECRET_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
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
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    version: int
    signing_secret: SigningSecretInfo
    health: _common_pb2.Health
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., name: _Optional[str] = ..., entity: _Optional[str] = ..., triggers: _Optional[_Iterable[_Union[_common_pb2.TriggerSpec, _Mapping]]] = ..., include_complete_data: _Optional[bool] = ..., webhook: _Optional[_Union[_common_pb2.Webhook, _Mapping]] = ..., authentication: _Optional[_Union[_common_pb2.Authentication, _Mapping]] = ..., retry_policy: _Optional[_Union[_common_pb2.RetryPolicy, _Mapping]] = ..., active: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ..., signing_secret: _Optional[_Union[SigningSecretInfo, _Mapping]] = ..., health: _Optional[_Union[_common_pb2.Health, _Mapping]] = ...) -> None: ...

class CreateSubscriptionRequest(_message.Message):
    __slots__ = ("subscription", "active")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    subscription: SubscriptionSpec
    active: bool
    def __init__(self, subscription: _Optional[_Union[SubscriptionSpec, _Mapping]] = ..., active: _Optional[bool] = ...) -> None: ...

class CreateSubscriptionResponse(_message.Message):
    __slots__ = ("subscription", "signing_secret")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SECRET_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    signing_secret: str
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ..., signing_secret: _Optional[str] = ...) -> None: ...

class GetSubscriptionRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListSubscriptionsRequest(_message.Message):
    __slots__ = ("entity", "active", "name_contains", "page_size", "page_token", "order_by", "ids", "exclude_ids", "include_total")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    NAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_IDS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TOTAL_FIELD_NUMBER: _ClassVar[int]
    entity: str
    active: bool
    name_contains: str
    page_size: int
    page_token: str
    order_by: SubscriptionOrder
    ids: _containers.RepeatedScalarFieldContainer[str]
    exclude_ids: _containers.RepeatedScalarFieldContainer[str]
    include_total: bool
    def __init__(self, entity: _Optional[str] = ..., active: _Optional[bool] = ..., name_contains: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., order_by: _Optional[_Union[SubscriptionOrder, str]] = ..., ids: _Optional[_Iterable[str]] = ..., exclude_ids: _Optional[_Iterable[str]] = ..., include_total: _Optional[bool] = ...) -> None: ...

class ListSubscriptionsResponse(_message.Message):
    __slots__ = ("subscriptions", "next_page_token", "total_size")
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    subscriptions: _containers.RepeatedCompositeFieldContainer[Subscription]
    next_page_token: str
    total_size: int
    def __init__(self, subscriptions: _Optional[_Iterable[_Union[Subscription, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class UpdateSubscriptionRequest(_message.Message):
    __slots__ = ("id", "subscription", "update_mask", "expected_version")
    ID_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    subscription: SubscriptionSpec
    update_mask: _field_mask_pb2.FieldMask
    expected_version: int
    def __init__(self, id: _Optional[str] = ..., subscription: _Optional[_Union[SubscriptionSpec, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., expected_version: _Optional[int] = ...) -> None: ...

class SetSubscriptionActiveRequest(_message.Message):
    __slots__ = ("id", "active", "expected_version")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    active: bool
    expected_version: int
    def __init__(self, id: _Optional[str] = ..., active: _Optional[bool] = ..., expected_version: _Optional[int] = ...) -> None: ...

class DeleteSubscriptionRequest(_message.Message):
    __slots__ = ("id", "expected_version")
    ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    expected_version: int
    def __init__(self, id: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class DeleteSubscriptionResponse(_message.Message):
    __slots__ = ("id", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    version: int
    def __init__(self, id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetSubscriptionHistoryRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class SubscriptionHistoryEntry(_message.Message):
    __slots__ = ("version", "event_type", "occurred_at", "actor", "changes")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    version: int
    event_type: str
    occurred_at: _timestamp_pb2.Timestamp
    actor: str
    changes: _struct_pb2.Struct
    def __init__(self, version: _Optional[int] = ..., event_type: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., changes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetSubscriptionHistoryResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[SubscriptionHistoryEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[SubscriptionHistoryEntry, _Mapping]]] = ...) -> None: ...

class RotateSigningSecretRequest(_message.Message):
    __slots__ = ("id", "overlap_seconds")
    ID_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    overlap_seconds: int
    def __init__(self, id: _Optional[str] = ..., overlap_seconds: _Optional[int] = ...) -> None: ...

class RotateSigningSecretResponse(_message.Message):
    __slots__ = ("subscription", "signing_secret")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SIGNING_SECRET_FIELD_NUMBER: _ClassVar[int]
    subscription: Subscription
    signing_secret: str
    def __init__(self, subscription: _Optional[_Union[Subscription, _Mapping]] = ..., signing_secret: _Optional[str] = ...) -> None: ...

class GetCatalogueRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Certificate(_message.Message):
    __slots__ = ("id", "tenant", "name", "subject", "issuer", "not_before", "not_after", "fingerprint_sha256", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    name: str
    subject: str
    issuer: str
    not_before: _timestamp_pb2.Timestamp
    not_after: _timestamp_pb2.Timestamp
    fingerprint_sha256: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., name: _Optional[str] = ..., subject: _Optional[str] = ..., issuer: _Optional[str] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., not_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fingerprint_sha256: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UploadCertificateRequest(_message.Message):
    __slots__ = ("name", "certificate_pem", "private_key_pem")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_KEY_PEM_FIELD_NUMBER: _ClassVar[int]
    name: str
    certificate_pem: str
    private_key_pem: str
    def __init__(self, name: _Optional[str] = ..., certificate_pem: _Optional[str] = ..., private_key_pem: _Optional[str] = ...) -> None: ...

class ListCertificatesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCertificatesResponse(_message.Message):
    __slots__ = ("certificates",)
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    certificates: _containers.RepeatedCompositeFieldContainer[Certificate]
    def __init__(self, certificates: _Optional[_Iterable[_Union[Certificate, _Mapping]]] = ...) -> None: ...

class DeleteCertificateRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteCertificateResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
