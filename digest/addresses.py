"""E-mail addresses as digest takes them from people: readers' addresses in subscribers.yaml,
`--to`, DIGEST_FROM. An address at a host without a dot (root@localhost) is a mailbox of this
machine: good only when mail is handed to a server here."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from email.headerregistry import Address
from email.utils import getaddresses

from email_validator import EmailNotValidError, validate_email

from .errors import ConfigError
from .text import has_controls, one_line, quoted


def is_this_machine(host: str | None) -> bool:
    """DIGEST_SMTP_HOST names this machine: unset (the outbox), localhost, a loopback address
    (127.0.0.1, ::1) or the machine's own host name."""
    if not host:
        return True
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost") or name == socket.gethostname().lower():
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


_HOST_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)
LOCAL_ONLY = "has no domain with a dot; allowed only when DIGEST_SMTP_HOST is this machine"


def mailbox(address: str, smtp_host: str | None = None) -> str:
    """`address` normalized, or EmailNotValidError saying why not. An address at a host without
    a dot (root@localhost, me@myhost) is a mailbox of this machine: good when mail is handed to
    a server here (`smtp_host` unset, localhost, loopback), refused with that reason otherwise."""
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        local, _, host = address.rpartition("@")
        if not local or not _HOST_NAME.match(host):
            raise
        if not is_this_machine(smtp_host):
            raise EmailNotValidError(
                f"{address} {LOCAL_ONLY} (localhost, 127.0.0.1, ::1, or unset for the outbox; it is "
                f"{smtp_host})"
            ) from exc
        # email-validator refuses such hosts outright (localhost is a special-use name): the
        # local part is checked on its own, the host is one DNS label
        checked = validate_email(f"{local}@example.org", check_deliverability=False).normalized
        return f"{checked.rpartition('@')[0]}@{host.lower()}"


def check_address(value: str, what: str, smtp_host: str | None = None) -> str:
    """One e-mail address given by hand (`--to`), normalized; ConfigError naming `what` if not.
    `smtp_host`: DIGEST_SMTP_HOST, which decides whether root@localhost can be delivered."""
    if has_controls(value) or any(ch in value for ch in "\r\n"):
        raise ConfigError(f"{what} {quoted(value)} holds control characters or line breaks; give one address")
    try:
        return mailbox(value.strip(), smtp_host)
    except EmailNotValidError as exc:
        raise ConfigError(f"{what} {quoted(value)} is not an e-mail address ({exc})") from exc


def check_sender(raw: str, smtp_host: str | None) -> str:
    """DIGEST_FROM: one mailbox, "Name <user@domain>" or "user@domain"; nothing that could add a
    header or a second address. A host without a dot only when mail stays on this machine."""
    if has_controls(raw) or any(ch in raw for ch in "\r\n"):
        raise ConfigError(
            f"DIGEST_FROM={quoted(raw)} holds a line break or control character; give one address "
            'such as "Paper Digest <digest@example.org>"'
        )
    addresses = getaddresses([raw])
    if len(addresses) != 1 or not addresses[0][1]:
        raise ConfigError(f"DIGEST_FROM={quoted(raw)} must be exactly one address such as digest@example.org")
    name, addr = addresses[0]
    try:
        mailbox(addr, smtp_host)
    except EmailNotValidError as exc:
        raise ConfigError(f"DIGEST_FROM={quoted(raw)} has no usable address ({exc})") from exc
    if not name:
        return addr
    if any(ch in name for ch in '()<>@,;:\\"[]'):  # "Digest, Inc." stays one name, quoted
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{addr}>"


def mail_address(display_name: str, addr_spec: str) -> Address:
    """A header address; an internationalized domain travels as its ASCII (IDNA) form when the
    local part is ASCII, so only a non-ASCII local part needs SMTPUTF8."""
    user, domain = addr_spec.rsplit("@", 1)
    if user.isascii() and not domain.isascii():
        with contextlib.suppress(UnicodeError):  # else left as it is: the message needs SMTPUTF8
            domain = domain.encode("idna").decode("ascii")
    return Address(display_name=one_line(display_name), username=user, domain=domain)
