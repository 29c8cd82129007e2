"""A real Postfix and a real Dovecot for the bounce tests: Debian's binaries, each with its own
configuration, queue and state in one temporary folder, listening on free loopback ports; stopped
and removed at the end of the session (`make test` installs the packages when missing).

Postfix takes mail for `digest-test.localdomain` and `localhost`. Every `bounces` address, VERP
ones too (`bounces+TOKEN@digest-test.localdomain`, recipient_delimiter `+`), is delivered by
local(8) into one Maildir; Dovecot serves that same Maildir over IMAP as the INBOX of a test user.
On `PostfixServer.port` a mail to a local user that does not exist is accepted and then bounced by
Postfix itself: its DSN (RFC 3464, multipart/report) goes to the envelope sender, so into the
Maildir when that is a bounces address. On `strict_port` the same recipient is refused at RCPT
time with a 550 and no DSN is made, as a real relay that knows its users does.

Run as root (as CI does). Postfix's daemons drop to the `postfix` account that Debian's package
creates; local(8) delivers to a file named in an alias as `default_privs` (nobody), so the Maildir
belongs to nobody, and Dovecot reads it as nobody too, with its own `dovecot` and `dovenull`
accounts for its internal and login processes.

    pytest_plugins = ["mailservers"]   # in a conftest or a test module: the session fixtures
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

DOMAIN = "digest-test.localdomain"
POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
MAIL_ACCOUNT = "nobody"  # the owner of the Maildir: Postfix's default_privs, Dovecot's mail user


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _tail(path: Path, chars: int = 400) -> str:
    try:
        return " ".join(path.read_text(errors="replace")[-chars:].split())
    except OSError:
        return ""


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)


def _start(log: Path, *command: str) -> str | None:
    """Run a command that leaves a daemon behind, its output into `log` (a daemon that kept a pipe
    open would keep the command from ending); None when it worked, else what it printed."""
    with log.open("ab") as out:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=60)
    return None if done.returncode == 0 else _tail(log) or f"{command[0]} exit status {done.returncode}"


def _why_not(program: str, package: str) -> str | None:
    """None when the test servers can run here, else the one line the tests skip with."""
    if not os.path.exists(program):
        return f"{package} is not installed (make test installs Debian's {package}): mail server not tested"
    if os.geteuid() != 0:
        return f"{package}'s test server needs root (as CI runs): mail server not tested"
    try:
        pwd.getpwnam(MAIL_ACCOUNT)
    except KeyError:
        return f"no {MAIL_ACCOUNT} account to deliver mail as: mail server not tested"
    return None


@dataclass
class Maildir:
    """The Maildir that every bounces address is delivered into and Dovecot serves."""

    path: Path

    @classmethod
    def create(cls, path: Path) -> Maildir:
        account = pwd.getpwnam(MAIL_ACCOUNT)
        for folder in (path, path / "cur", path / "new", path / "tmp"):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chown(folder, account.pw_uid, account.pw_gid)
        return cls(path)

    def files(self) -> list[Path]:
        return sorted(p for sub in ("new", "cur") for p in (self.path / sub).iterdir() if p.is_file())

    def messages(self) -> list[Message]:
        return [message_from_bytes(p.read_bytes()) for p in self.files()]

    def place(self, raw: bytes, name: str) -> Path:
        """Put a message in new/ as a delivery agent does (tmp/ then a rename), owned by its user."""
        account = pwd.getpwnam(MAIL_ACCOUNT)
        staged = self.path / "tmp" / name
        staged.write_bytes(raw)
        os.chown(staged, account.pw_uid, account.pw_gid)
        return staged.rename(self.path / "new" / name)


_MAIN_CF = """\
compatibility_level = 3.6
config_directory = {folder}/etc
queue_directory = {folder}/queue
data_directory = {folder}/data
maillog_file_prefixes = {folder}
mail_owner = postfix
setgid_group = postdrop
maillog_file = {folder}/maillog
myhostname = {domain}
mydomain = {domain}
myorigin = {domain}
mydestination = {domain}, localhost.localdomain, localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
default_transport = error:this test server sends no mail out
relay_transport = error:this test server sends no mail out
alias_maps = texthash:{folder}/etc/aliases
alias_database =
local_recipient_maps =
recipient_delimiter = +
mail_spool_directory = {folder}/spool
allow_mail_to_commands =
biff = no
append_dot_mydomain = no
smtpd_peername_lookup = no
bounce_queue_lifetime = 0
maximal_queue_lifetime = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""

# Nothing chrooted (the queue folder is not set up as a chroot jail); the smtpd on `port` accepts
# mail for unknown local users (local_recipient_maps empty, from main.cf) and local(8) bounces it;
# the one on `strict_port` refuses them at RCPT time.
_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
127.0.0.1:{strict_port} inet n - n - - smtpd
  -o local_recipient_maps=unix:passwd.byname,$alias_maps
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


@dataclass
class PostfixServer:
    folder: Path
    maildir: Maildir
    port: int
    strict_port: int
    host: str = "127.0.0.1"
    domain: str = DOMAIN

    @property
    def bounce_address(self) -> str:
        return f"bounces@{self.domain}"

    def verp_address(self, token: str) -> str:
        return f"bounces+{token}@{self.domain}"

    @classmethod
    def start(cls, maildir: Maildir, folder: Path) -> PostfixServer | str:
        """The running server, or one line saying why there is none (the tests then skip)."""
        why = _why_not(POSTFIX, "postfix")
        if why:
            return why
        # Root owns the configuration and the queue folder; `postfix start` makes the queue's
        # folders inside with the owners and modes it wants (postfix and postdrop).
        for sub in ("etc", "queue"):
            (folder / sub).mkdir(mode=0o755, parents=True)
        server = cls(folder, maildir, _free_port(), _free_port())
        values = {"folder": folder, "domain": DOMAIN, "port": server.port, "strict_port": server.strict_port}
        (folder / "etc" / "main.cf").write_text(_MAIN_CF.format(**values))
        (folder / "etc" / "master.cf").write_text(_MASTER_CF.format(**values))
        # A path ending in / in an alias is a Maildir for local(8); the alias table is root's,
        # so the delivery runs as default_privs, the Maildir's owner. A texthash: table needs no
        # postalias (which sleeps up to 2 s when the source file is new).
        postmaster = Maildir.create(folder / "postmaster")
        (folder / "etc" / "aliases").write_text(
            f"bounces {maildir.path}/\npostmaster {postmaster.path}/\n"
            "root postmaster\nMAILER-DAEMON postmaster\n"
        )
        # `postfix` and the table readers wait up to 2 s for a file changed in the current second
        # (so that a change is never missed): date the new files back.
        past = time.time() - 60
        for written in (folder / "etc").iterdir():
            os.utime(written, (past, past))
        try:
            failed = _start(folder / "start.log", POSTFIX, "-c", str(folder / "etc"), "start")
        except (subprocess.SubprocessError, OSError) as exc:
            failed = str(exc)
        if failed:
            server.stop()
            return f"Postfix did not start ({failed[-300:]}): mail server not tested"
        if not _wait_for_port(server.port, 20) or not _wait_for_port(server.strict_port, 5):
            tail = _tail(folder / "maillog")
            server.stop()
            return f"Postfix did not listen ({tail}): mail server not tested"
        return server

    def flush(self) -> None:
        """`postqueue -f`: retry every deferred mail now."""
        _run("/usr/sbin/postqueue", "-c", str(self.folder / "etc"), "-f")

    def queue(self) -> str:
        """`postqueue -p`: what is waiting, as Postfix prints it."""
        return _run("/usr/sbin/postqueue", "-c", str(self.folder / "etc"), "-p").stdout

    def log(self) -> str:
        """What Postfix logged (its maillog_file), for a failing test's message."""
        log = self.folder / "maillog"
        return log.read_text(errors="replace") if log.exists() else ""

    def wait_for_mail(self, about: str, count: int = 1, seconds: float = 15) -> list[Message]:
        """The Maildir's messages whose text holds `about` (a token, a subject), once there are at
        least `count` of them (flushing the queue while it waits), or those there are when
        `seconds` run out."""
        deadline = time.monotonic() + seconds
        next_flush = time.monotonic() + 2
        while True:
            found = [m for m in self.maildir.messages() if about in m.as_string()]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            if time.monotonic() > next_flush:
                self.flush()
                next_flush = time.monotonic() + 2
            time.sleep(0.05)

    def stop(self) -> None:
        """Kill the server's processes at once (`postfix stop` polls once a second until they are
        gone, and a test server has nothing to save), then remove its folder."""
        config = f"MAIL_CONFIG={self.folder / 'etc'}"
        _kill_group(self.folder / "queue" / "pid" / "master.pid", config, "environ")
        shutil.rmtree(self.folder, ignore_errors=True)


_DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {folder}/run
state_dir = {folder}/state
instance_name = digest-test-{port}
log_path = {folder}/dovecot.log
info_log_path = {folder}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
mail_uid = {uid}
mail_gid = {gid}
mail_location = maildir:{maildir}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={folder}/home
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@dataclass
class DovecotServer:
    folder: Path
    maildir: Path
    port: int
    host: str = "127.0.0.1"
    user: str = "digest"
    password: str = "digest-test-password"

    @property
    def url(self) -> str:
        return f"imap://{self.user}@{self.host}:{self.port}/INBOX"

    @classmethod
    def start(cls, maildir: Maildir, folder: Path) -> DovecotServer | str:
        """The running server, or one line saying why there is none (the tests then skip)."""
        why = _why_not(DOVECOT, "dovecot-imapd") or _why_not("/usr/lib/dovecot/imap", "dovecot-imapd")
        if why:
            return why
        try:
            pwd.getpwnam("dovecot")
            pwd.getpwnam("dovenull")
        except KeyError:
            return "no dovecot or dovenull account (Debian's dovecot-core makes them): mail server not tested"
        folder.mkdir(mode=0o755, parents=True)
        server = cls(folder, maildir.path, _free_port())
        account = pwd.getpwnam(MAIL_ACCOUNT)
        home = folder / "home"
        home.mkdir()
        os.chown(home, account.pw_uid, account.pw_gid)
        (folder / "passwd").write_text(f"{server.user}:{{PLAIN}}{server.password}::::::\n")
        conf = folder / "dovecot.conf"
        conf.write_text(
            _DOVECOT_CONF.format(
                folder=folder, port=server.port, maildir=maildir.path, uid=account.pw_uid, gid=account.pw_gid
            )
        )
        try:
            failed = _start(folder / "start.log", DOVECOT, "-c", str(conf))
        except (subprocess.SubprocessError, OSError) as exc:
            failed = str(exc)
        if failed:
            server.stop()
            return f"Dovecot did not start ({failed[-300:]}): mail server not tested"
        if not _wait_for_port(server.port, 20):
            tail = _tail(folder / "dovecot.log")
            server.stop()
            return f"Dovecot did not listen ({tail}): mail server not tested"
        return server

    def deliver(self, raw: bytes) -> Path:
        """Put a message into the served Maildir as a delivery agent would; its file."""
        return Maildir(self.maildir).place(raw, f"{time.time_ns()}.digest-test.{os.getpid()}")

    def stop(self) -> None:
        """Kill the server's processes at once (`dovecot stop` waits a second or more for them, and
        a test server has nothing to save), then remove its folder."""
        _kill_group(self.folder / "run" / "master.pid", str(self.folder / "dovecot.conf"), "cmdline")
        shutil.rmtree(self.folder, ignore_errors=True)


def _kill_group(pid_file: Path, mark: str, where: str) -> None:
    """SIGKILL the process group of the master named in `pid_file`. Postfix's and Dovecot's
    masters each lead a session of their own, and every process they start is in it; the group is
    killed only if its leader's /proc/PID/`where` still holds `mark` (this server, not a reused id)."""
    try:
        master = int(pid_file.read_text().split()[0])
        if os.getpgid(master) == master and mark.encode() in Path(f"/proc/{master}/{where}").read_bytes():
            os.killpg(master, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass  # never started, or already gone


# --- the session's fixtures -------------------------------------------------------------------
# Both servers live in one temporary folder around the Maildir they share; it is made by the
# first of them that a session starts and removed when the last one stops. Only the two fixtures
# are public, so a test module or conftest imports just those.

_shared: dict[str, Path | int | None] = {"folder": None, "users": 0}


def _take_folder() -> Path:
    if _shared["folder"] is None:
        folder = Path(tempfile.mkdtemp(prefix="digest-mail-"))
        folder.chmod(0o755)  # the servers' own accounts walk through it
        Maildir.create(folder / "Maildir")
        _shared["folder"] = folder
    _shared["users"] = int(_shared["users"] or 0) + 1
    return Path(str(_shared["folder"]))


def _give_back_folder() -> None:
    _shared["users"] = int(_shared["users"] or 0) - 1
    if _shared["users"] == 0 and _shared["folder"] is not None:
        shutil.rmtree(str(_shared["folder"]), ignore_errors=True)
        _shared["folder"] = None


def _session_server(binary: str, package: str, start: Callable[[Path], Any]) -> Iterator[Any]:
    """One server for the session in the shared folder, or a skip saying why there is none."""
    why = _why_not(binary, package)
    if why:
        pytest.skip(why)
    folder = _take_folder()
    try:
        server = start(folder)
        if isinstance(server, str):
            pytest.skip(server)
        try:
            yield server
        finally:
            server.stop()
    finally:
        _give_back_folder()


@pytest.fixture(scope="session")
def postfix_server() -> Iterator[PostfixServer]:
    """A private Postfix on loopback for the session (see the module's docstring)."""
    yield from _session_server(
        POSTFIX, "postfix", lambda f: PostfixServer.start(Maildir(f / "Maildir"), f / "postfix")
    )


@pytest.fixture(scope="session")
def imap_server() -> Iterator[DovecotServer]:
    """A private Dovecot on loopback for the session, serving the bounces Maildir as INBOX."""
    yield from _session_server(
        DOVECOT,
        "dovecot-imapd",
        lambda f: DovecotServer.start(Maildir(f / "Maildir"), f / "dovecot"),
    )
