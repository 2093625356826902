"""gRPC plumbing shared by every service: auth, error statuses, the server runner."""

from webhooks_grpc.auth import (
    TENANT_HEADER,
    AuthError,
    AuthInterceptor,
    Principal,
    authenticate,
    current_principal,
)
from webhooks_grpc.boundary import BoundaryInterceptor, InvalidField, to_datetime
from webhooks_grpc.errors import abort, abort_fields, describe_rpc_error, field_violations
from webhooks_grpc.server import build_server, run_service
from webhooks_grpc.supervision import keep_running
from webhooks_grpc.tokens import PLATFORM_TENANT, TokenTable, load_tokens

__all__ = [
    "PLATFORM_TENANT",
    "TENANT_HEADER",
    "AuthError",
    "AuthInterceptor",
    "BoundaryInterceptor",
    "InvalidField",
    "Principal",
    "TokenTable",
    "abort",
    "abort_fields",
    "authenticate",
    "build_server",
    "current_principal",
    "describe_rpc_error",
    "field_violations",
    "keep_running",
    "load_tokens",
    "run_service",
    "to_datetime",
]
