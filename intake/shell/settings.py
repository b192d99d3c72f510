"""Settings from the environment (and a `.env` file when present).

The desk itself (hours, rota, lines) lives in the database, loaded from the TOML
definition; this module holds only secrets and infrastructure.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import load_dotenv

from intake.core.addresses import strict_address
from intake.core.errors import ConfigurationError

DEFAULT_INSTANCE = Path("instance")
# Twilio's REST API, where voicemail recordings are fetched from (tests use a local server).
TWILIO_API_BASE = "https://api.twilio.com"
# Proxies in front of the app whose X-Forwarded-* headers may be believed (nginx, a load
# balancer before it, ...): a longer chain than this is a mistake in the setting.
MAX_PROXIES = 5


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"expected 1 or 0, got {value!r}")


def _int(name: str, env: Mapping[str, str], default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None


def _reissue_minutes(env: Mapping[str, str]) -> int:
    """How often an IMAP IDLE is renewed: under the 29 minutes of RFC 2177, or a server
    may end it first."""
    minutes = _int("INTAKE_IDLE_MINUTES", env, 25)
    if not 1 <= minutes <= 28:
        raise ConfigurationError(f"INTAKE_IDLE_MINUTES must be 1 to 28, got {minutes}")
    return minutes


def _list(value: str) -> list[str]:
    """A comma-separated setting, its items stripped, empty ones left out."""
    return [item.strip() for item in value.split(",") if item.strip()]


def _proxies(env: Mapping[str, str]) -> int:
    """INTAKE_TRUSTED_PROXIES: how many proxies in front set X-Forwarded-*; 0 believes none."""
    hops = _int("INTAKE_TRUSTED_PROXIES", env, 0)
    if not 0 <= hops <= MAX_PROXIES:
        raise ConfigurationError(
            f"INTAKE_TRUSTED_PROXIES must be 0 to {MAX_PROXIES} (the proxies in front), got {hops}"
        )
    return hops


def _api_base(raw: str) -> str:
    """A scheme and host ("https://api.twilio.com"), nothing after it."""
    base = raw.strip().rstrip("/") or TWILIO_API_BASE
    parts = urlsplit(base)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.path or parts.query:
        raise ConfigurationError(
            f"TWILIO_API_BASE must be a scheme and host such as {TWILIO_API_BASE}, got {raw!r}"
        )
    return base


def _sender(raw: str) -> str:
    """INTAKE_SMTP_FROM, held to the same strict address check as every address we send to.

    The outbox refuses a sender that check does not read as one plain address, so a wrong
    value is refused here, at start-up, rather than by every message later.
    """
    sender = raw.strip()
    if sender and strict_address(sender) != sender:
        raise ConfigurationError(
            f"INTAKE_SMTP_FROM must be one plain address such as helpdesk@example.org, got {raw!r}"
        )
    return sender


def _https(name: str, env: Mapping[str, str]) -> str:
    """An https origin that tokens are asked from, or "" for the default."""
    value = env.get(name, "").strip().rstrip("/")
    if value and urlsplit(value).scheme != "https":
        raise ConfigurationError(f"{name} must be an https:// address, got {value!r}")
    return value


def _bind(name: str, env: Mapping[str, str]) -> str:
    """HOST:PORT, or "" when not set."""
    value = env.get(name, "").strip()
    host, _, port = value.rpartition(":")
    if value and (not host or not port.isdigit() or not 0 < int(port) < 65536):
        raise ConfigurationError(f"{name} must be HOST:PORT such as 127.0.0.1:9100, got {value!r}")
    return value


def _names(name: str, env: Mapping[str, str]) -> tuple[str, ...]:
    """A comma-separated list (group ids), blanks dropped."""
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


def _sign_in(env: Mapping[str, str]) -> dict[str, Any]:
    """Signing in through the organisation's identity provider (OpenID Connect), and
    whether the dashboard's own passwords still count."""
    issuer = _https("INTAKE_OIDC_ISSUER", env)
    config: dict[str, Any] = {
        "OIDC_ISSUER": issuer,
        "OIDC_CLIENT_ID": env.get("INTAKE_OIDC_CLIENT_ID", "").strip(),
        "OIDC_CLIENT_SECRET": env.get("INTAKE_OIDC_CLIENT_SECRET", "").strip(),
        "OIDC_NAME": env.get("INTAKE_OIDC_NAME", "").strip(),
        "OIDC_GROUPS_CLAIM": env.get("INTAKE_OIDC_GROUPS_CLAIM", "").strip() or "groups",
        "OIDC_COORDINATOR_GROUPS": _names("INTAKE_OIDC_COORDINATOR_GROUPS", env),
        "OIDC_STAFF_GROUPS": _names("INTAKE_OIDC_STAFF_GROUPS", env),
        "LOCAL_LOGIN": _flag(env.get("INTAKE_LOCAL_LOGIN"), True),
    }
    if issuer and not (config["OIDC_CLIENT_ID"] and config["OIDC_CLIENT_SECRET"]):
        raise ConfigurationError(
            "INTAKE_OIDC_ISSUER is set: INTAKE_OIDC_CLIENT_ID and INTAKE_OIDC_CLIENT_SECRET "
            "are needed too"
        )
    if issuer and not (config["OIDC_COORDINATOR_GROUPS"] or config["OIDC_STAFF_GROUPS"]):
        raise ConfigurationError(
            "INTAKE_OIDC_ISSUER is set but no group may log in: set "
            "INTAKE_OIDC_COORDINATOR_GROUPS and/or INTAKE_OIDC_STAFF_GROUPS"
        )
    if not config["LOCAL_LOGIN"] and not issuer:
        raise ConfigurationError(
            "INTAKE_LOCAL_LOGIN=0 leaves no way to log in: set INTAKE_OIDC_ISSUER first"
        )
    return config


def _at_least_one(name: str, env: Mapping[str, str], default: int) -> int:
    value = _int(name, env, default)
    if value < 1:
        raise ConfigurationError(f"{name} must be 1 or more, got {value}")
    return value


def _secret_key(instance: Path) -> str:
    """A key generated once into the instance folder, so sessions survive a restart."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


def from_environment(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The app's config keys, read from `env` (default: `os.environ` after `.env`)."""
    if env is None:
        load_dotenv(override=False)
        env = os.environ
    instance = Path(env.get("INTAKE_INSTANCE_PATH", str(DEFAULT_INSTANCE))).resolve()
    database_url = env.get("INTAKE_DATABASE_URL", "").strip()
    if not database_url:
        instance.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite:///{instance / 'intake.db'}"
    public_url = env.get("INTAKE_PUBLIC_URL", "").strip().rstrip("/")
    if public_url and not public_url.startswith(("https://", "http://")):
        raise ConfigurationError(f"INTAKE_PUBLIC_URL must start with https:// (got {public_url!r})")
    try:
        insecure = _flag(env.get("INTAKE_INSECURE_DEV"), False)
        imap_ssl = _flag(env.get("INTAKE_IMAP_SSL"), True)
        imap_starttls = _flag(env.get("INTAKE_IMAP_STARTTLS"), True)
        smtp_starttls = _flag(env.get("INTAKE_SMTP_STARTTLS"), True)
        idle = _flag(env.get("INTAKE_IDLE"), True)
    except ConfigurationError as exc:
        raise ConfigurationError(f"a yes/no setting is wrong: {exc}") from None
    return {
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": database_url,
        "SECRET_KEY": env.get("INTAKE_SECRET_KEY") or _secret_key(instance),
        # Earlier keys, newest first: sessions and sealed second factors made under them
        # still open while a new INTAKE_SECRET_KEY comes in (Flask's own SECRET_KEY_FALLBACKS).
        "SECRET_KEY_FALLBACKS": _list(env.get("INTAKE_SECRET_KEY_FALLBACKS", "")),
        "PUBLIC_URL": public_url,
        "TRUSTED_PROXIES": _proxies(env),
        "TWILIO_ACCOUNT_SID": env.get("TWILIO_ACCOUNT_SID", ""),
        "TWILIO_AUTH_TOKEN": env.get("TWILIO_AUTH_TOKEN", ""),
        "TWILIO_API_BASE": _api_base(env.get("TWILIO_API_BASE", "")),
        "INSECURE_DEV": insecure,
        "IMAP_HOST": env.get("INTAKE_IMAP_HOST", ""),
        "IMAP_PORT": _int("INTAKE_IMAP_PORT", env, 993),
        "IMAP_USER": env.get("INTAKE_IMAP_USER", ""),
        "IMAP_PASSWORD": env.get("INTAKE_IMAP_PASSWORD", ""),
        "IMAP_SSL": imap_ssl,
        "IMAP_FOLDER": env.get("INTAKE_IMAP_FOLDER", "INBOX"),
        "IMAP_STARTTLS": imap_starttls,
        "IMAP_CAFILE": env.get("INTAKE_IMAP_CAFILE", ""),
        "IMAP_PROCESSED_FOLDER": env.get("INTAKE_IMAP_PROCESSED_FOLDER", ""),
        "SMTP_HOST": env.get("INTAKE_SMTP_HOST", ""),
        "SMTP_PORT": _int("INTAKE_SMTP_PORT", env, 587),
        "SMTP_USER": env.get("INTAKE_SMTP_USER", ""),
        "SMTP_PASSWORD": env.get("INTAKE_SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": smtp_starttls,
        "SMTP_FROM": _sender(env.get("INTAKE_SMTP_FROM", "")),
        "POLL_SECONDS": _int("INTAKE_POLL_SECONDS", env, 60),
        "IDLE": idle,
        "IDLE_REISSUE_SECONDS": _reissue_minutes(env) * 60,
        "MICROSOFT_AUTHORITY": _https("INTAKE_MICROSOFT_AUTHORITY", env),
        "OAUTH_CAFILE": env.get("INTAKE_OAUTH_CAFILE", "").strip(),
        # /metrics: a Bearer token it asks for, and/or the one address it answers on.
        "METRICS_TOKEN": env.get("INTAKE_METRICS_TOKEN", "").strip(),
        "METRICS_BIND": _bind("INTAKE_METRICS_BIND", env),
        # `intake serve`: gunicorn's workers and threads, and how long a stop may take.
        # Dashboard sessions end after this many hours without a click, and at the latest
        # this many hours after logging in.
        "SESSION_IDLE_TIMEOUT": timedelta(hours=_at_least_one("INTAKE_SESSION_IDLE_HOURS", env, 8)),
        "SESSION_MAX_AGE": timedelta(hours=_at_least_one("INTAKE_SESSION_MAX_HOURS", env, 12)),
        # Now: how long "ik bel terug" holds an item before it is free again.
        "TAKE_MINUTES": _at_least_one("INTAKE_TAKE_MINUTES", env, 30),
        "WEB_WORKERS": _at_least_one("INTAKE_WEB_WORKERS", env, 2),
        "WEB_THREADS": _at_least_one("INTAKE_WEB_THREADS", env, 4),
        "GRACEFUL_SECONDS": _at_least_one("INTAKE_GRACEFUL_SECONDS", env, 30),
        **_sign_in(env),
    }
