"""--error-code of the failures commands: the CLI's filter is the service's (filter_of on
both sides, no service needed), and --help names every failure class."""

from __future__ import annotations

import pytest

from webhooks.v1 import messages_pb2
from webhooks_catalogue.failure_classes import failure_name
from webhooks_cli import failures as cli_failures
from webhooks_cli.main import parse_args
from webhooks_failures import filters
from webhooks_failures.view_query import failure_classes

FC = messages_pb2.FailureClass


def test_help_names_every_failure_class_but_http_status() -> None:
    for value in FC.values():
        name = failure_name(value)
        if value in (FC.FAILURE_CLASS_UNSPECIFIED, FC.FAILURE_CLASS_HTTP_STATUS):
            assert not name or name not in cli_failures.ERROR_CODE_HELP
        else:
            assert name in cli_failures.ERROR_CODE_HELP


@pytest.mark.parametrize(
    ("flags", "codes", "classes"),
    [
        (["--error-code", "soap_fault"], ("soap_fault",), (FC.FAILURE_CLASS_SOAP_FAULT,)),
        (["--error-code", "SOAP fault,500"], ("soap_fault", "500"), (FC.FAILURE_CLASS_SOAP_FAULT,)),
        (["--error-code", "503", "--error-code", "TLS"], ("503", "tls"), (FC.FAILURE_CLASS_TLS,)),
        (["--error-code", "500"], ("500",), ()),
    ],
)
def test_error_codes_reach_the_service_as_statuses_and_classes(
    flags: list[str], codes: tuple[str, ...], classes: tuple[int, ...]
) -> None:
    request = cli_failures.filter_of(parse_args(["failures", "list", *flags]))
    wanted = filters.filter_of(request)
    assert wanted.error_codes == codes
    assert failure_classes(wanted) == classes


def test_an_unknown_code_names_the_field_and_the_classes() -> None:
    request = cli_failures.filter_of(parse_args(["failures", "list", "--error-code", "oops"]))
    with pytest.raises(filters.InvalidRequest, match="soap_fault") as caught:
        filters.filter_of(request)
    assert caught.value.field == "filter.error_codes"
