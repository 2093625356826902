"""``webhooks certificates ...``: the client certificates (with private keys) a tenant
uploads for mTLS to its endpoints; subscriptions refer to them by id."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from webhooks.v1.subscriptions_pb2 import (
    DeleteCertificateRequest,
    ListCertificatesRequest,
    UploadCertificateRequest,
)
from webhooks_cli.client import Client
from webhooks_cli.output import print_json, print_table
from webhooks_cli.spec import read_text_file
from webhooks_cli.views import CERTIFICATE_HEADERS, certificate_row

Handler = Callable[[argparse.Namespace, Client], int]


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


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    parent = commands.add_parser(
        "certificates", help="manage client certificates (mTLS)", parents=[common]
    )
    sub = parent.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help, parents=[common], allow_abbrev=False)
        parser.set_defaults(client_handler=handler)
        return parser

    parser = action("upload", upload, "upload a certificate and its private key (PEM)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--cert", required=True, metavar="PEMFILE", help="certificate (PEM)")
    parser.add_argument("--key", required=True, metavar="KEYFILE", help="private key (PEM)")
    action("list", list_, "list certificates: id, name, subject, expiry")
    parser = action("delete", delete, "delete a certificate no subscription uses")
    parser.add_argument("id", metavar="ID")
