"""The generated gRPC stub of each service a client talks to, and how its errors name it."""

from __future__ import annotations

from typing import Any

from webhooks.v1 import (
    failures_pb2_grpc,
    router_pb2_grpc,
    sender_pb2_grpc,
    subscriptions_pb2_grpc,
)

STUBS: dict[str, tuple[Any, str]] = {
    "subscriptions": (subscriptions_pb2_grpc.SubscriptionServiceStub, "the subscriptions service"),
    "router": (router_pb2_grpc.RouterServiceStub, "the router"),
    "sender": (sender_pb2_grpc.SenderServiceStub, "the sender"),
    "failures": (failures_pb2_grpc.FailuresServiceStub, "the failures service"),
}
