"""One typed settings object, read from ``MAILFLOW_*`` variables and an optional TOML file.

Environment variables win over the file, the file over the defaults. Nothing here is read at
import time: ``load_settings`` is called once by the CLI and the result passed explicitly.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from mailflow.errors import ConfigurationError
from mailflow.resources import CHECKOUT_ROOT, is_installed_package, shipped

PROJECT_ROOT = CHECKOUT_ROOT  # the checkout; in an installed package, its site-packages directory

Security = Literal["ssl", "starttls", "none"]
AuthMethod = Literal["password", "oauth2"]
SecureCookies = Literal["auto", "always", "never"]
_YES, _NO = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILFLOW_", extra="forbid", validate_default=True)

    # Mailbox. No host means the embedded default: a Maildir inside the data directory.
    imap_host: str | None = None
    imap_port: int | None = None
    imap_user: str | None = None
    imap_password: str | None = Field(default=None, repr=False)
    imap_auth: AuthMethod = "password"
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
    smtp_auth: AuthMethod = "password"
    smtp_timeout: float = 30.0
    from_address: str = "Loket Migratie Gent <migratie@stad.gent>"
    reply_domain: str | None = None  # domain of our Message-IDs; defaults to from_address's domain

    # OAuth2 for IMAP and SMTP (imap_auth / smtp_auth = "oauth2"): one app registration serves both.
    oauth2_provider: Literal["microsoft", "google", "generic"] | None = None
    oauth2_mechanism: Literal["XOAUTH2", "OAUTHBEARER"] = "XOAUTH2"
    oauth2_tenant_id: str | None = None  # microsoft
    oauth2_client_id: str | None = None
    # Secrets: here, or (better: not in the environment) in a file named by the *_file setting.
    oauth2_client_secret: str | None = Field(default=None, repr=False)
    oauth2_client_secret_file: Path | None = None
    oauth2_certificate_file: Path | None = None  # microsoft: PEM private key + certificate
    oauth2_service_account_file: Path | None = None  # google: the service account's JSON key
    oauth2_refresh_token: str | None = Field(default=None, repr=False)  # google, generic
    oauth2_refresh_token_file: Path | None = None
    oauth2_token_url: str | None = None  # generic (required); google with a refresh token
    oauth2_scope: str | None = None  # defaults to the provider's mail scope
    oauth2_refresh_margin: float = Field(default=300.0, ge=0)  # renew tokens this many seconds early
    oauth2_timeout: float = Field(default=30.0, gt=0)
    # Known expiry dates (ISO, YYYY-MM-DD): warned about oauth2_expiry_warning_days before.
    oauth2_client_secret_expires: date | None = None
    oauth2_refresh_token_expires: date | None = None
    oauth2_expiry_warning_days: int = Field(default=14, ge=0)

    data_dir: Path = Field(default_factory=lambda: _default_data_dir())
    database_url: str | None = None
    # At start-up, bring an existing database's schema up to date; None: only the embedded SQLite
    # database (no database_url). Otherwise a database behind the code stops the start with
    # "run mailflow db upgrade". An empty database always gets its schema.
    auto_migrate: bool | None = None
    # Shipped with the package (mailflow.resources); these settings point elsewhere.
    templates_dir: Path = Field(default_factory=lambda: shipped("templates"))
    classifiers_dir: Path = Field(default_factory=lambda: shipped("classifiers"))

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

    # Limits before work: what one email may cost. Over a limit an email is quarantined with a reason a
    # person understands, or processed without the parts over it (attachments beyond the count or bytes).
    max_message_bytes: int = Field(default=36 * 1024 * 1024, ge=1024)  # RFC822.SIZE: larger is never fetched
    max_header_bytes: int = Field(default=256 * 1024, ge=1024)  # the header block, up to its blank line
    max_mime_depth: int = Field(default=20, ge=1, le=200)  # multiparts and forwards inside each other
    max_attachments: int = Field(default=50, ge=0)  # more are dropped, with a note
    max_attachment_bytes: int = Field(default=30 * 1024 * 1024, ge=0)  # decoded, all attachments together
    # The parse worker (a child process): wall clock and CPU seconds, and address space, per email.
    parse_timeout: float = Field(default=60.0, gt=0)
    parse_memory_mb: int = Field(default=1024, ge=128)
    # Documents: none set means ``[reader]`` of classifiers/documents.toml decides.
    pdf_max_pages: int | None = Field(default=None, ge=1)
    image_max_pixels: int | None = Field(default=None, ge=1)
    ocr_timeout: float | None = Field(default=None, gt=0)  # wall clock for reading one attachment
    documents_time_per_email: float | None = Field(default=None, ge=0)  # for all attachments of one email
    # An email whose processing was cut short (the worker killed) this many times is quarantined as poison.
    poison_attempts: int = Field(default=3, ge=1)

    outbox_interval: float = Field(default=5.0, gt=0)
    outbox_max_attempts: int = Field(default=12, ge=1)
    outbox_backoff_base: float = Field(default=30.0, gt=0)
    lease_seconds: float = Field(default=300.0, gt=0)
    # A worker's claims go to others once its heartbeat is this many intervals old (not after the lease).
    worker_heartbeat_seconds: float = Field(default=10.0, gt=0)
    worker_heartbeat_misses: int = Field(default=3, ge=2)
    # A stable name for this worker process (unique among running workers): restarted under the same
    # name, it resumes its own claims at once. Empty: the host and its lowest free slot (worker_slot.py).
    worker_name: str | None = Field(default=None, max_length=200)
    # The longest wait between reconnection attempts (2, 4, 8, … seconds up to this).
    reconnect_max_seconds: float = Field(default=15.0, ge=1)

    # The web desk (``mailflow web``). No secret key: one is generated once and kept in the data dir.
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    # Requests served at once by the production server (waitress), each on its own thread.
    web_threads: int = Field(default=8, ge=1, le=256)
    # Peers whose X-Forwarded-For/-Proto/-Host/-Prefix are believed (addresses or networks);
    # empty: no peer's, and the headers are dropped.
    web_trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    secret_key: str | None = Field(default=None, repr=False)
    # The blob store's keys (docs/encryption.md): "naming:<b64> key:<b64> ..."; none set: the key file,
    # made with a fresh keyring at first use (data_dir/blob-keys unless blob_keys_file names another).
    blob_keys: str | None = Field(default=None, repr=False)
    blob_keys_file: Path | None = None
    session_lifetime: float = Field(default=8 * 3600.0, gt=0)  # seconds from login
    # auto: cookies are Secure when the request came over HTTPS (directly or said by a trusted proxy);
    # always / never force it (true and false, the older values, mean always and never).
    web_secure_cookies: SecureCookies = "auto"
    # Strict-Transport-Security's max-age on HTTPS responses; 0 sends none.
    web_hsts_seconds: int = Field(default=365 * 24 * 3600, ge=0)
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

    # Retention (docs/retention.md): days after which an email's content is erased, per rule; 0 keeps it.
    # Counted from its last decision (a closed case's emails: from the closing). Emails awaiting a person
    # (triage, quarantine) and cases under a legal hold are never erased by the schedule.
    retention_enabled: bool = True
    retention_at: str = Field(default="03:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    retention_machine_days: int = Field(default=30, ge=0)  # spam, bounces, auto-replies
    retention_duplicate_days: int = Field(default=30, ge=0)  # the same email received twice
    retention_ignored_days: int = Field(default=90, ge=0)  # other emails a person or rule set aside
    retention_processed_days: int = Field(default=730, ge=0)  # answered, no case (information questions)
    retention_closed_case_days: int = Field(default=5 * 365, ge=0)  # a closed case and all its emails
    retention_batch: int = Field(default=500, ge=1)  # emails erased per transaction

    @field_validator("oauth2_mechanism", mode="before")
    @classmethod
    def _mechanism_in_capitals(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    # Operations (``mailflow check``, /healthz, /metrics, the worker's heartbeat, logs).
    # A PEM file of CA certificates trusted besides the system's, for IMAP, SMTP and PostgreSQL.
    ca_file: Path | None = None
    log_format: Literal["text", "json"] = "text"
    # No poll succeeded for this long: the worker logs an error and, with an address, mails it once.
    heartbeat_alert_minutes: float = Field(default=15.0, gt=0)
    heartbeat_alert_to: str | None = None
    # /metrics holds counts only; these restrict who may read them (both empty: anyone).
    metrics_token: str | None = Field(default=None, repr=False)
    metrics_allow: str = ""  # comma-separated addresses or networks, e.g. "127.0.0.1, 10.0.0.0/8"

    @field_validator("desk_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a time zone name such as Europe/Brussels") from exc
        return value

    @field_validator("web_secure_cookies", mode="before")
    @classmethod
    def _secure_cookies_tristate(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "always" if value else "never"
        if isinstance(value, str):
            word = value.strip().lower()
            return "always" if word in _YES else "never" if word in _NO else word
        return value

    @field_validator("web_trusted_proxies", mode="before")
    @classmethod
    def _proxy_networks(cls, value: Any) -> list[str]:
        """A list, or one string of addresses and networks separated by commas or spaces."""
        if isinstance(value, str):
            items = json.loads(value) if value.lstrip().startswith("[") else value.replace(",", " ").split()
        else:
            items = list(value or [])
        networks = []
        for item in items:
            try:
                networks.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or network such as 10.0.0.0/8") from exc
        return networks

    @field_validator("metrics_allow")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError as exc:
                    raise ValueError(f"{part.strip()!r} is not an address or network") from exc
        return value

    @property
    def metrics_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [
            ipaddress.ip_network(p.strip(), strict=False) for p in self.metrics_allow.split(",") if p.strip()
        ]

    @model_validator(mode="after")
    def _fill_derived(self) -> Settings:
        if self.imap_host and self.imap_port is None:
            self.imap_port = 993 if self.imap_security == "ssl" else 143
        if self.smtp_host and self.smtp_port is None:
            self.smtp_port = {"ssl": 465, "starttls": 587, "none": 25}[self.smtp_security]
        if "oauth2" in (self.imap_auth, self.smtp_auth):
            _check_oauth2(self)
        return self

    @property
    def migrates_at_start(self) -> bool:
        """Whether start-up may upgrade an existing schema (see ``auto_migrate``)."""
        return self.database_url is None if self.auto_migrate is None else self.auto_migrate

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
    def effective_blob_keys_file(self) -> Path:
        return self.blob_keys_file or self.data_dir / "blob-keys"

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


def _default_data_dir() -> Path:
    """A checkout keeps its data in ``storage/``; an installed package in the user's data directory."""
    if not is_installed_package():
        return PROJECT_ROOT / "storage"
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "mailflow"


def _check_oauth2(settings: Settings) -> None:
    """Name every missing OAuth2 setting at start-up, not at the first login hours later."""
    provider = settings.oauth2_provider
    if provider is None:
        raise ValueError("imap_auth or smtp_auth is oauth2: set oauth2_provider (microsoft, google, generic)")
    has_secret = bool(settings.oauth2_client_secret or settings.oauth2_client_secret_file)
    has_refresh = bool(settings.oauth2_refresh_token or settings.oauth2_refresh_token_file)
    missing = []
    if provider == "microsoft":
        missing += [name for name in ("oauth2_tenant_id", "oauth2_client_id") if not getattr(settings, name)]
        if has_secret == bool(settings.oauth2_certificate_file):
            missing.append("exactly one of oauth2_client_secret(_file) or oauth2_certificate_file")
    elif provider == "google":
        if not settings.oauth2_service_account_file and not (settings.oauth2_client_id and has_refresh):
            missing.append("oauth2_service_account_file, or oauth2_client_id and oauth2_refresh_token(_file)")
    else:
        missing += [name for name in ("oauth2_token_url", "oauth2_client_id") if not getattr(settings, name)]
    if settings.imap_auth == "oauth2" and settings.imap_host and not settings.imap_user:
        missing.append("imap_user (the mailbox to log in to)")
    if (
        settings.smtp_auth == "oauth2"
        and settings.smtp_host
        and not (settings.smtp_user or settings.imap_user)
    ):
        missing.append("smtp_user or imap_user (the mailbox SMTP logs in as)")
    if missing:
        raise ValueError(f"OAuth2 with provider {provider} needs: {'; '.join(missing)}")


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
