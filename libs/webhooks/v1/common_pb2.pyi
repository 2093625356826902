import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WebhookType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEBHOOK_TYPE_UNSPECIFIED: _ClassVar[WebhookType]
    WEBHOOK_TYPE_REST: _ClassVar[WebhookType]
    WEBHOOK_TYPE_SOAP: _ClassVar[WebhookType]

class SoapVersion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOAP_VERSION_UNSPECIFIED: _ClassVar[SoapVersion]
    SOAP_VERSION_1_1: _ClassVar[SoapVersion]
    SOAP_VERSION_1_2: _ClassVar[SoapVersion]

class HealthState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_STATE_UNSPECIFIED: _ClassVar[HealthState]
    HEALTH_STATE_HEALTHY: _ClassVar[HealthState]
    HEALTH_STATE_FAILING: _ClassVar[HealthState]
    HEALTH_STATE_CIRCUIT_OPEN: _ClassVar[HealthState]
    HEALTH_STATE_THROTTLED: _ClassVar[HealthState]
    HEALTH_STATE_DISABLED: _ClassVar[HealthState]
WEBHOOK_TYPE_UNSPECIFIED: WebhookType
WEBHOOK_TYPE_REST: WebhookType
WEBHOOK_TYPE_SOAP: WebhookType
SOAP_VERSION_UNSPECIFIED: SoapVersion
SOAP_VERSION_1_1: SoapVersion
SOAP_VERSION_1_2: SoapVersion
HEALTH_STATE_UNSPECIFIED: HealthState
HEALTH_STATE_HEALTHY: HealthState
HEALTH_STATE_FAILING: HealthState
HEALTH_STATE_CIRCUIT_OPEN: HealthState
HEALTH_STATE_THROTTLED: HealthState
HEALTH_STATE_DISABLED: HealthState

class StatusChange(_message.Message):
    __slots__ = ("from_status", "to_status")
    FROM_STATUS_FIELD_NUMBER: _ClassVar[int]
    TO_STATUS_FIELD_NUMBER: _ClassVar[int]
    from_status: int
    to_status: int
    def __init__(self, from_status: _Optional[int] = ..., to_status: _Optional[int] = ...) -> None: ...

class TriggerSpec(_message.Message):
    __slots__ = ("trigger", "channels", "activity_types", "status_changes", "whatsapp_channels", "whatsapp_statuses")
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_TYPES_FIELD_NUMBER: _ClassVar[int]
    STATUS_CHANGES_FIELD_NUMBER: _ClassVar[int]
    WHATSAPP_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    WHATSAPP_STATUSES_FIELD_NUMBER: _ClassVar[int]
    trigger: str
    channels: _containers.RepeatedScalarFieldContainer[int]
    activity_types: _containers.RepeatedScalarFieldContainer[int]
    status_changes: _containers.RepeatedCompositeFieldContainer[StatusChange]
    whatsapp_channels: _containers.RepeatedScalarFieldContainer[str]
    whatsapp_statuses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, trigger: _Optional[str] = ..., channels: _Optional[_Iterable[int]] = ..., activity_types: _Optional[_Iterable[int]] = ..., status_changes: _Optional[_Iterable[_Union[StatusChange, _Mapping]]] = ..., whatsapp_channels: _Optional[_Iterable[str]] = ..., whatsapp_statuses: _Optional[_Iterable[str]] = ...) -> None: ...

class SoapParameter(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class SoapSettings(_message.Message):
    __slots__ = ("operation", "namespace", "soap_action", "version", "parameters", "wsdl_url", "wsdl_document")
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    SOAP_ACTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    WSDL_URL_FIELD_NUMBER: _ClassVar[int]
    WSDL_DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    operation: str
    namespace: str
    soap_action: str
    version: SoapVersion
    parameters: _containers.RepeatedCompositeFieldContainer[SoapParameter]
    wsdl_url: str
    wsdl_document: str
    def __init__(self, operation: _Optional[str] = ..., namespace: _Optional[str] = ..., soap_action: _Optional[str] = ..., version: _Optional[_Union[SoapVersion, str]] = ..., parameters: _Optional[_Iterable[_Union[SoapParameter, _Mapping]]] = ..., wsdl_url: _Optional[str] = ..., wsdl_document: _Optional[str] = ...) -> None: ...

class Webhook(_message.Message):
    __slots__ = ("type", "url", "soap", "client_certificate_id", "rate_limit_per_second", "method", "format", "content_type")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SOAP_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CERTIFICATE_ID_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    type: WebhookType
    url: str
    soap: SoapSettings
    client_certificate_id: str
    rate_limit_per_second: int
    method: str
    format: str
    content_type: str
    def __init__(self, type: _Optional[_Union[WebhookType, str]] = ..., url: _Optional[str] = ..., soap: _Optional[_Union[SoapSettings, _Mapping]] = ..., client_certificate_id: _Optional[str] = ..., rate_limit_per_second: _Optional[int] = ..., method: _Optional[str] = ..., format: _Optional[str] = ..., content_type: _Optional[str] = ...) -> None: ...

class BasicAuth(_message.Message):
    __slots__ = ("username", "password", "password_set")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_SET_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    password_set: bool
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ..., password_set: _Optional[bool] = ...) -> None: ...

class OAuth2AccessToken(_message.Message):
    __slots__ = ("header_prefix", "access_token", "access_token_set")
    HEADER_PREFIX_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_SET_FIELD_NUMBER: _ClassVar[int]
    header_prefix: str
    access_token: str
    access_token_set: bool
    def __init__(self, header_prefix: _Optional[str] = ..., access_token: _Optional[str] = ..., access_token_set: _Optional[bool] = ...) -> None: ...

class OAuth2ClientCredentials(_message.Message):
    __slots__ = ("token_url", "scope", "client_id", "client_secret", "client_secret_set")
    TOKEN_URL_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_SET_FIELD_NUMBER: _ClassVar[int]
    token_url: str
    scope: str
    client_id: str
    client_secret: str
    client_secret_set: bool
    def __init__(self, token_url: _Optional[str] = ..., scope: _Optional[str] = ..., client_id: _Optional[str] = ..., client_secret: _Optional[str] = ..., client_secret_set: _Optional[bool] = ...) -> None: ...

class OAuth2PasswordCredentials(_message.Message):
    __slots__ = ("token_url", "scope", "client_id", "client_secret", "client_secret_set", "username", "password", "password_set")
    TOKEN_URL_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_SET_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_SET_FIELD_NUMBER: _ClassVar[int]
    token_url: str
    scope: str
    client_id: str
    client_secret: str
    client_secret_set: bool
    username: str
    password: str
    password_set: bool
    def __init__(self, token_url: _Optional[str] = ..., scope: _Optional[str] = ..., client_id: _Optional[str] = ..., client_secret: _Optional[str] = ..., client_secret_set: _Optional[bool] = ..., username: _Optional[str] = ..., password: _Optional[str] = ..., password_set: _Optional[bool] = ...) -> None: ...

class NoAuthentication(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Authentication(_message.Message):
    __slots__ = ("none", "basic", "oauth2_access_token", "oauth2_client_credentials", "oauth2_password")
    NONE_FIELD_NUMBER: _ClassVar[int]
    BASIC_FIELD_NUMBER: _ClassVar[int]
    OAUTH2_ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OAUTH2_CLIENT_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    OAUTH2_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    none: NoAuthentication
    basic: BasicAuth
    oauth2_access_token: OAuth2AccessToken
    oauth2_client_credentials: OAuth2ClientCredentials
    oauth2_password: OAuth2PasswordCredentials
    def __init__(self, none: _Optional[_Union[NoAuthentication, _Mapping]] = ..., basic: _Optional[_Union[BasicAuth, _Mapping]] = ..., oauth2_access_token: _Optional[_Union[OAuth2AccessToken, _Mapping]] = ..., oauth2_client_credentials: _Optional[_Union[OAuth2ClientCredentials, _Mapping]] = ..., oauth2_password: _Optional[_Union[OAuth2PasswordCredentials, _Mapping]] = ...) -> None: ...

class RetryPolicy(_message.Message):
    __slots__ = ("retries", "interval_seconds")
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    retries: int
    interval_seconds: int
    def __init__(self, retries: _Optional[int] = ..., interval_seconds: _Optional[int] = ...) -> None: ...

class CatalogueValue(_message.Message):
    __slots__ = ("id", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class CatalogueTrigger(_message.Message):
    __slots__ = ("name", "fires_when", "components")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FIRES_WHEN_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    fires_when: str
    components: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., fires_when: _Optional[str] = ..., components: _Optional[_Iterable[str]] = ...) -> None: ...

class CatalogueEntity(_message.Message):
    __slots__ = ("name", "description", "triggers")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    triggers: _containers.RepeatedCompositeFieldContainer[CatalogueTrigger]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., triggers: _Optional[_Iterable[_Union[CatalogueTrigger, _Mapping]]] = ...) -> None: ...

class Catalogue(_message.Message):
    __slots__ = ("entities", "channels", "activity_types", "object_statuses", "tag_types", "whatsapp_statuses")
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    ACTIVITY_TYPES_FIELD_NUMBER: _ClassVar[int]
    OBJECT_STATUSES_FIELD_NUMBER: _ClassVar[int]
    TAG_TYPES_FIELD_NUMBER: _ClassVar[int]
    WHATSAPP_STATUSES_FIELD_NUMBER: _ClassVar[int]
    entities: _containers.RepeatedCompositeFieldContainer[CatalogueEntity]
    channels: _containers.RepeatedCompositeFieldContainer[CatalogueValue]
    activity_types: _containers.RepeatedCompositeFieldContainer[CatalogueValue]
    object_statuses: _containers.RepeatedCompositeFieldContainer[CatalogueValue]
    tag_types: _containers.RepeatedCompositeFieldContainer[CatalogueValue]
    whatsapp_statuses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, entities: _Optional[_Iterable[_Union[CatalogueEntity, _Mapping]]] = ..., channels: _Optional[_Iterable[_Union[CatalogueValue, _Mapping]]] = ..., activity_types: _Optional[_Iterable[_Union[CatalogueValue, _Mapping]]] = ..., object_statuses: _Optional[_Iterable[_Union[CatalogueValue, _Mapping]]] = ..., tag_types: _Optional[_Iterable[_Union[CatalogueValue, _Mapping]]] = ..., whatsapp_statuses: _Optional[_Iterable[str]] = ...) -> None: ...

class Health(_message.Message):
    __slots__ = ("state", "consecutive_failures", "failing_since", "last_failure_at", "last_error", "last_success_at", "until", "reason")
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    FAILING_SINCE_FIELD_NUMBER: _ClassVar[int]
    LAST_FAILURE_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_SUCCESS_AT_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    state: HealthState
    consecutive_failures: int
    failing_since: _timestamp_pb2.Timestamp
    last_failure_at: _timestamp_pb2.Timestamp
    last_error: str
    last_success_at: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, state: _Optional[_Union[HealthState, str]] = ..., consecutive_failures: _Optional[int] = ..., failing_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_failure_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ..., last_success_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...
