"""Settings: the only module that reads the environment (``HUB_*`` variables).

Everything else receives a :class:`Settings` value, so tests build one directly and nothing reads
``os.environ`` behind the composition root's back.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class SettingsError(ValueError):
    """A ``HUB_*`` variable has a value the hub cannot use; the message names it."""


def _bool(name: str, raw: str) -> bool:
    low = raw.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name}: expected true/false, got {raw!r}")


def _int(name: str, raw: str, lo: int, hi: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name}: {value} is outside {lo}..{hi}")
    return value


@dataclass(frozen=True)
class Settings:
    """Every knob of the hub. Field ``x`` is read from ``HUB_X``; README documents each."""

    data_dir: Path = Path("var")
    database_url: str = field(
        default="", repr=False
    )  # empty: SQLite under data_dir; may hold a password
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = field(default="", repr=False)  # empty: generated once into data_dir
    log_level: str = "INFO"
    public_url: str = ""  # how browsers reach the hub; default http://host:port
    default_region: str = "US"  # for phone numbers written without a country code
    timezone: str = "UTC"  # the center's day: "service level today" restarts at its midnight
    max_body_bytes: int = 1_048_576
    session_ttl_s: int = 12 * 3600
    login_attempts_per_minute: int = 10
    cookie_secure: bool = False
    redis_url: str = field(default="", repr=False)  # set: socket.io fan-out between hub processes
    meili_url: str = ""  # set: Meilisearch instead of the embedded index
    meili_key: str = field(default="", repr=False)
    search_worker: bool = False  # the embedded index is written by a child process of the hub
    run_channels: bool = True  # start channel receive loops in the lifespan
    dispatcher: bool = True  # run the router/dispatcher in this process
    transcribe: str = "auto"  # call transcripts: on/off; auto = on when pocketsphinx imports
    reply_attachment_max_bytes: int = 10 * 1_048_576  # one file an agent attaches to a reply
    reply_attachment_types: str = (  # comma-separated content types agents may attach
        "image/png,image/jpeg,image/gif,image/webp,image/tiff,application/pdf,text/plain"
    )

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'contacthub.db').resolve()}"

    @property
    def reply_attachment_type_set(self) -> frozenset[str]:
        return frozenset(t.strip().lower() for t in self.reply_attachment_types.split(","))

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def effective_public_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    def resolved_secret(self) -> str:
        """The signing secret, generated into the data dir on first use so restarts keep it."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``HUB_*`` variables; unknown ``HUB_*`` names are an error."""
        env = os.environ if environ is None else environ
        known = {f"HUB_{f.name.upper()}": f.name for f in fields(cls)}
        unknown = sorted(k for k in env if k.startswith("HUB_") and k not in known)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
        values: dict[str, object] = {}
        for var, name in known.items():
            if var not in env:
                continue
            raw = env[var]
            if name == "data_dir":
                values[name] = Path(raw)
            elif name == "port":
                values[name] = _int(var, raw, 1, 65535)
            elif name == "max_body_bytes":
                values[name] = _int(var, raw, 1024, 1 << 30)
            elif name == "session_ttl_s":
                values[name] = _int(var, raw, 60, 90 * 86400)
            elif name == "reply_attachment_max_bytes":
                values[name] = _int(var, raw, 1, 1 << 30)
            elif name == "reply_attachment_types":
                types = [t.strip().lower() for t in raw.split(",") if t.strip()]
                bad = [t for t in types if t.count("/") != 1 or " " in t]
                if bad or not types:
                    raise SettingsError(
                        f"{var}: expected content types like image/png, got {raw!r}"
                    )
                values[name] = ",".join(types)
            elif name == "login_attempts_per_minute":
                values[name] = _int(var, raw, 1, 10_000)
            elif name in {"cookie_secure", "run_channels", "dispatcher", "search_worker"}:
                values[name] = _bool(var, raw)
            elif name == "transcribe":
                if raw.strip().lower() not in {"on", "off", "auto"}:
                    raise SettingsError(f"{var}: expected on/off/auto, got {raw!r}")
                values[name] = raw.strip().lower()
            elif name == "timezone":
                try:
                    ZoneInfo(raw)
                except (ZoneInfoNotFoundError, ValueError):
                    raise SettingsError(f"{var}: unknown time zone {raw!r}") from None
                values[name] = raw
            elif name == "log_level":
                level = raw.upper()
                if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
                    raise SettingsError(f"{var}: expected DEBUG/INFO/WARNING/ERROR, got {raw!r}")
                values[name] = level
            else:
                values[name] = raw
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def known_variables() -> frozenset[str]:
    """Every ``HUB_*`` name the settings understand (checked against docker/compose.yaml)."""
    return frozenset(f"HUB_{f.name.upper()}" for f in fields(Settings))


def process_environment() -> dict[str, str]:
    """A copy of the process environment, for secrets a config file names (``password_env``)
    and for the hub's child processes (the search index worker).

    Kept here so that this module stays the only one that reads the environment.
    """
    return dict(os.environ)
