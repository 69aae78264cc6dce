"""One typed settings object, read from ``MAILFLOW_*`` variables and an optional TOML file.

Environment variables win over the file, the file over the defaults. Nothing here is read at
import time: ``load_settings`` is called once by the CLI and the result passed explicitly.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mailflow.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

Security = Literal["ssl", "starttls", "none"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILFLOW_", extra="forbid", validate_default=True)

    # Mailbox. No host means the embedded default: a Maildir inside the data directory.
    imap_host: str | None = None
    imap_port: int | None = None
    imap_user: str | None = None
    imap_password: str | None = Field(default=None, repr=False)
    imap_security: Security = "ssl"
    imap_folder: str = "INBOX"
    imap_batch_size: int = Field(default=50, ge=1, le=1000)
    imap_timeout: float = 60.0
    # Seconds between polls when the server has no IDLE, and the longest an IDLE lasts.
    poll_interval: float = Field(default=60.0, gt=0)
    idle_timeout: float = Field(default=300.0, gt=0)

    # Outgoing mail. No host: replies are written to ``<data_dir>/outbox`` instead of sent.
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: Security = "starttls"
    smtp_user: str | None = None
    smtp_password: str | None = Field(default=None, repr=False)
    smtp_timeout: float = 30.0
    from_address: str = "Loket Migratie Gent <migratie@stad.gent>"
    reply_domain: str | None = None  # domain of our Message-IDs; defaults to from_address's domain

    data_dir: Path = PROJECT_ROOT / "storage"
    database_url: str | None = None
    templates_dir: Path = PROJECT_ROOT / "templates"
    classifiers_dir: Path = PROJECT_ROOT / "classifiers"

    # The counter's receiving server (stad.gent); only its Authentication-Results are believed.
    trusted_authserv_id: str | None = "mx.stad.gent"
    # When true, an email without Authentication-Results from the trusted server counts as failed.
    require_authentication: bool = False
    confidence_threshold: float = Field(default=0.55, ge=0, le=1)
    # The learned model (``mailflow train``); none there, or use_model off: the catalogue's rules alone.
    model_dir: Path | None = None  # defaults to <classifiers_dir>/model
    use_model: bool = True
    word_vectors_dir: Path | None = None  # defaults to <classifiers_dir>/embeddings
    # Language detection: "low" reads trigrams only (about 400 MB less memory, as accurate on the
    # emails measured), "high" all n-gram models.
    language_accuracy: Literal["low", "high"] = "low"
    # The receiving server's spam filter (SpamAssassin, Rspamd, Microsoft 365) marks spam in headers.
    spam_verdicts: bool = True
    # Retraining (``mailflow train``, and the worker's nightly job at ``retrain_at``, the worker machine's
    # local time): these labelled corpora plus the staff's decisions. A new model is installed only when
    # it is at least as good as the installed one on held-out emails.
    training_corpora: list[Path] = Field(default_factory=lambda: _default_corpora())
    retrain_enabled: bool = True
    retrain_at: str = Field(default="02:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    default_language: str = "nl"
    case_prefix: str = "MIG"
    booking_base_url: str = "https://stad.gent/afspraak"

    # Loop and abuse protection: one automatic reply per sender per period, and a global hourly cap.
    reply_sender_period_hours: float = Field(default=24.0, ge=0)
    reply_hourly_cap: int = Field(default=500, ge=0)
    # Signs the case references in our Message-IDs; workers on several machines must share it.
    thread_secret: str | None = Field(default=None, repr=False)

    outbox_interval: float = Field(default=5.0, gt=0)
    outbox_max_attempts: int = Field(default=12, ge=1)
    outbox_backoff_base: float = Field(default=30.0, gt=0)
    lease_seconds: float = Field(default=300.0, gt=0)

    # The web desk (``mailflow web``). No secret key: one is generated once and kept in the data dir.
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    secret_key: str | None = Field(default=None, repr=False)
    session_lifetime: float = Field(default=8 * 3600.0, gt=0)  # seconds from login
    # Browsers keep Secure cookies on http://localhost too; switch off only behind plain-HTTP proxies.
    web_secure_cookies: bool = True
    triage_lease_seconds: float = Field(default=600.0, gt=0)
    # A person's decision waits this long before it is applied, and can be taken back meanwhile.
    desk_undo_seconds: float = Field(default=10.0, ge=0, le=120)
    # The desk's language for a person who has not chosen one (nl, fr or en), and the zone of its times.
    desk_language: Literal["nl", "fr", "en"] = "nl"
    desk_timezone: str = "Europe/Brussels"
    login_max_failures: int = Field(default=5, ge=1)
    # One address trying many accounts (or many names): refused for the rest of the window too.
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_window_seconds: float = Field(default=900.0, gt=0)

    @field_validator("desk_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a time zone name such as Europe/Brussels") from exc
        return value

    @model_validator(mode="after")
    def _fill_derived(self) -> Settings:
        if self.imap_host and self.imap_port is None:
            self.imap_port = 993 if self.imap_security == "ssl" else 143
        if self.smtp_host and self.smtp_port is None:
            self.smtp_port = {"ssl": 465, "starttls": 587, "none": 25}[self.smtp_security]
        return self

    @property
    def uses_embedded_mailbox(self) -> bool:
        return not self.imap_host

    @property
    def maildir_path(self) -> Path:
        return self.data_dir / "maildir"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "web-secret-key"

    @property
    def effective_model_dir(self) -> Path:
        return self.model_dir or self.classifiers_dir / "model"

    @property
    def effective_word_vectors_dir(self) -> Path:
        return self.word_vectors_dir or self.classifiers_dir / "embeddings"

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def mailbox_name(self) -> str:
        """How the ledger names the mailbox: stable across restarts, distinct per account."""
        if self.uses_embedded_mailbox:
            return f"maildir:{self.imap_folder}"
        return f"imap://{self.imap_user}@{self.imap_host}/{self.imap_folder}"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'mailflow.sqlite3'}"

    @property
    def message_id_domain(self) -> str:
        if self.reply_domain:
            return self.reply_domain
        address = self.from_address.rsplit("<", 1)[-1].rstrip(">")
        return address.rpartition("@")[2] or "localhost"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first, then values passed in (those read from the TOML file).
        return env_settings, init_settings


def _default_corpora() -> list[Path]:
    """The corpora ``make corpora`` builds, and the shared dev corpus beside the project, when there."""
    built = PROJECT_ROOT / "storage" / "corpora"
    candidates = [
        PROJECT_ROOT.parent / "shared" / "corpus" / "dev",
        built / "training",
        built / "spamassassin-train",
    ]
    return [corpus for corpus in candidates if (corpus / "labels.jsonl").is_file()]


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (if any) under the environment; raise ConfigurationError on bad values."""
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            with open(config_file, "rb") as handle:
                raw = tomllib.load(handle)
        except OSError as exc:
            raise ConfigurationError(f"cannot read configuration file {config_file}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"configuration file {config_file} is not valid TOML: {exc}") from exc
        values.update(_flatten(raw.get("mailflow", raw)))
    values.update(overrides)
    try:
        return Settings(**values)
    except ValueError as exc:
        raise ConfigurationError(f"invalid settings: {exc}") from exc


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Let the file group settings (``[imap] host = …``) or name them flat (``imap_host = …``)."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}_"))
        else:
            flat[name] = value
    return flat
