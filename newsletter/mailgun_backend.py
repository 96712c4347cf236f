"""anymail's Mailgun backend, lightened for 1,000-recipient digest batches.

Two costs of anymail's own backend grow with the batch and dominate a digest worker's CPU:

- Form-urlencoding: a batch carries ~700 KB of recipient-variables JSON, and every byte of it
  goes through urllib.parse's pure-Python percent-escaping (~40 ms per call), which the
  provider then has to undo. Mailgun's API takes the same fields as multipart/form-data, which
  requests writes without escaping; requests switches to multipart as soon as there is one
  part in `files`, so the recipient variables travel as a filename-less field part.
- Address handling: every `to` address goes through email.utils.getaddresses and Django's
  sanitize_address (~25 µs each). Subscription addresses are stored validated and
  normalised, so plain ASCII addr-specs take a direct path; anything else (display names,
  IDN, quoting) still goes through anymail's parser.

Everything else (payload, merge data, errors, status) is anymail's backend unchanged, except
that a message may carry a `call_gate` (the digest's final claim check, run once the payload is
built, right before the request) and a `call_deadline` (seconds for the whole request).
"""

from __future__ import annotations

import re

from anymail.backends.mailgun import EmailBackend as AnymailMailgunBackend
from anymail.backends.mailgun import MailgunPayload
from anymail.utils import EmailAddress, parse_address_list

from newsletter.deadline import call_deadline


class CallGateClosed(Exception):
    """The message's call gate said no: the request was not made."""


_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def address_list_parse(value, field=None) -> list[EmailAddress]:
    """anymail's parse_address_list, with a direct path for lists of plain addr-specs."""
    if isinstance(value, list | tuple) and all(
        isinstance(item, str) and _PLAIN_ADDRESS.fullmatch(item) for item in value
    ):
        return [EmailAddress("", item) for item in value]
    return parse_address_list(value, field=field)


def _plain_to(attrs: tuple) -> tuple:
    return tuple(
        (attr, combiner, address_list_parse if attr == "to" else converter)
        for attr, combiner, converter in attrs
    )


class MultipartMailgunPayload(MailgunPayload):
    base_message_attrs = _plain_to(MailgunPayload.base_message_attrs)

    def set_recipients(self, recipient_type, emails):
        # anymail's own method, except that a plain addr-spec is its own formatted address.
        if emails:
            self.data[recipient_type] = [
                email.addr_spec
                if not email.display_name and _PLAIN_ADDRESS.fullmatch(email.addr_spec)
                else email.address
                for email in emails
            ]
            self.all_recipients += emails
        if recipient_type == "to":
            self.to_emails = [email.addr_spec for email in emails]

    def get_request_params(self, api_url):
        params = super().get_request_params(api_url)
        data = params["data"]
        if not params["files"] and "recipient-variables" in data:
            data = dict(data)
            variables = data.pop("recipient-variables")
            params["data"] = data
            params["files"] = [("recipient-variables", (None, variables.encode("utf-8")))]
        return params


class EmailBackend(AnymailMailgunBackend):
    """Use as the digest's batch connection (see services.digest_sending)."""

    def build_message_payload(self, message, defaults):
        return MultipartMailgunPayload(message, defaults, self)

    def post_to_esp(self, payload, message):
        # The gate runs after the payload is built, so only the request itself follows it.
        gate = getattr(message, "call_gate", None)
        if gate is not None and not gate():
            raise CallGateClosed("the call gate is closed")
        with call_deadline(getattr(message, "call_deadline", 0) or 0):
            return super().post_to_esp(payload, message)
