"""What the tests' private Dovecot is told: its dovecot.conf, and who owns its mail.

A server with an `oauth2_config` path (tests/oauthdovecot.py) also signs users in with
OAuth2 tokens (XOAUTH2, OAUTHBEARER), asking an introspection endpoint about each; the
password passdb stays beside it, for PLAIN and LOGIN. Without that path the config is as
it always was.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
from pathlib import Path
from typing import Protocol

from tests.serverkit import ServiceUnavailable

__all__ = ["config_text", "mail_owner", "oauth2_config_text"]


class _Server(Protocol):
    host: str
    port: int
    ssl_port: int

    @property
    def directory(self) -> Path: ...

    @property
    def cafile(self) -> str: ...


def config_text(dovecot: _Server, mail_uid: int, mail_gid: int) -> str:
    """The whole dovecot.conf: one Maildir user, plain IMAP and IMAPS, as root or rootless."""
    d = dovecot.directory
    oauth2: Path | None = getattr(dovecot, "oauth2_config", None)
    mechanisms = "plain login xoauth2 oauthbearer" if oauth2 else "plain login"
    oauth2_passdb = (
        f"""passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {oauth2}
}}
"""
        if oauth2
        else ""
    )
    password_mechanisms = "\n  mechanisms = plain login" if oauth2 else ""
    if os.geteuid() == 0:
        # Root starts the master; the login and auth processes drop to Debian's dovenull and
        # dovecot users (the defaults), the mail processes to `nobody`, since Dovecot refuses
        # to handle mail as uid 0.
        privileges = ""
    else:
        # Rootless: every process stays the current user, and nothing can chroot.
        me = pwd.getpwuid(os.geteuid()).pw_name
        my_group = grp.getgrgid(os.getegid()).gr_name
        privileges = f"""
default_internal_user = {me}
default_internal_group = {my_group}
default_login_user = {me}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
service auth-worker {{
  user = {me}
}}
"""
    return f"""# Written by tests/dovecotconf.py for one test run; not the system's Dovecot.
instance_name = intake-test
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = {dovecot.host}
ssl = yes
ssl_cert = <{dovecot.cafile}
ssl_key = <{d}/server.key
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_verbose = yes
# A wrong password is answered within half a second (Dovecot's own timer), not after the
# default 2 s growing with anvil's penalty for repeated failures: refused-login tests stay fast.
auth_failure_delay = 0
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_fsync = never
namespace inbox {{
  inbox = yes
}}
{oauth2_passdb}passdb {{
  driver = passwd-file{password_mechanisms}
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={d}/mail/%u
}}
protocol imap {{
  # Pollers, crash tests and the helpers below all log in from 127.0.0.1 as one user.
  mail_max_userip_connections = 1000
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {dovecot.port}
  }}
  inet_listener imaps {{
    port = {dovecot.ssl_port}
    ssl = yes
  }}
}}
{privileges}"""


def oauth2_config_text(introspection_url: str, cafile: str) -> str:
    """dovecot-oauth2.conf.ext: every token is POSTed to the introspection endpoint
    (RFC 7662), which names the user it belongs to; an inactive token is refused."""
    return f"""# Written by tests/dovecotconf.py for one test run.
introspection_mode = post
introspection_url = {introspection_url}
username_attribute = username
active_attribute = active
active_value = true
tls_ca_cert_file = {cafile}
"""


def mail_owner() -> tuple[int, int]:
    """Who owns the test mail: the current user, or `nobody` when running as root."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError as exc:
        raise ServiceUnavailable("no `nobody` user to own the test mail") from exc
    with contextlib.suppress(KeyError):
        return nobody.pw_uid, grp.getgrnam("nogroup").gr_gid
    return nobody.pw_uid, nobody.pw_gid
