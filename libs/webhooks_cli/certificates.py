"""``webhooks certificates ...``: the client certificates (with private keys) a tenant
uploads for mTLS to its endpoints; subscriptions refer to them by id."""

from __future__ import annotations

import argparse

from webhooks.v1.subscriptions_pb2 import (
    DeleteCertificateRequest,
    ListCertificatesRequest,
    UploadCertificateRequest,
)
from webhooks_cli.client import Client
from webhooks_cli.output import print_json, print_table
from webhooks_cli.spec import read_text_file
from webhooks_cli.views import CERTIFICATE_HEADERS, certificate_row


def upload(args: argparse.Namespace, client: Client) -> int:
    request = UploadCertificateRequest(
        name=args.name,
        certificate_pem=read_text_file(args.cert, "--cert"),
        private_key_pem=read_text_file(args.key, "--key"),
    )
    certificate = client.call("UploadCertificate", request)
    if args.json:
        print_json(certificate)
    else:
        print_table(CERTIFICATE_HEADERS, [certificate_row(certificate)])
    return 0


def list_(args: argparse.Namespace, client: Client) -> int:
    response = client.call("ListCertificates", ListCertificatesRequest())
    if args.json:
        print_json(response)
    else:
        print_table(CERTIFICATE_HEADERS, [certificate_row(c) for c in response.certificates])
    return 0


def delete(args: argparse.Namespace, client: Client) -> int:
    response = client.call("DeleteCertificate", DeleteCertificateRequest(id=args.id))
    if args.json:
        print_json(response)
    else:
        print(f"deleted certificate {args.id}")
    return 0
