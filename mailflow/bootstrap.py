"""The one place that builds mailflow's parts from the settings and wires them together."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from mailflow.adapters.worker_slot import WorkerSlot, take_slot
from mailflow.classification.catalogue import Catalogue, load_catalogue
from mailflow.classification.learning.artefact import ArtefactError, load_model, load_model_or_none
from mailflow.classification.learning.model import TrainedModel
from mailflow.classification.learning.reload import ModelWatch
from mailflow.classification.word_vectors import WordVectors, load_word_vectors
from mailflow.domain import CaseSummary
from mailflow.ingest import Ingestor
from mailflow.operations.heartbeat import Heartbeat, LatencyRecorder, Watchdog, mail_notifier
from mailflow.pipeline import Analyser
from mailflow.ports import Mailbox, ReplyTransport
from mailflow.processing import Processor
from mailflow.refusals import IntakeLimits
from mailflow.replies.compose import ReplyComposer
from mailflow.replies.outbox import Outbox, RetryPolicy
from mailflow.replies.thread_tokens import ThreadSigner, load_or_create_key
from mailflow.runner import Worker
from mailflow.settings import Settings
from mailflow.stages.act import Actor, ReplyLimits
from mailflow.stages.decide import DecisionPolicy
from mailflow.stages.documents import load_rules
from mailflow.stages.language import LanguageDetector
from mailflow.stages.limits_config import limits_of, with_reader_limits
from mailflow.stages.parse import parse
from mailflow.stages.parse_sandbox import ParseSandbox
from mailflow.stages.thread import CaseLookup
from mailflow.storage.blobs import FileBlobStore, blob_store
from mailflow.storage.database import make_engine, make_session_factory
from mailflow.storage.ledger import Ledger
from mailflow.storage.models import AttachmentRecord, Case, Message
from mailflow.storage.schema import ensure_schema

if TYPE_CHECKING:
    from mailflow.oauth2.tokens import TokenProvider

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def build_analyser(
    settings: Settings,
    catalogue: Catalogue | None = None,
    *,
    signer: ThreadSigner | None = None,
    case_lookup: CaseLookup | None = None,
) -> Analyser:
    """The pure part of the pipeline: what ``classify`` and the worker share."""
    model = load_model_or_none(settings.effective_model_dir) if settings.use_model else None
    return Analyser(
        signer=signer,
        case_lookup=case_lookup,
        catalogue=catalogue or load_catalogue(settings.classifiers_dir),
        language_detector=LanguageDetector(low_accuracy=settings.language_accuracy == "low"),
        document_rules=with_reader_limits(load_rules(settings.classifiers_dir / "documents.toml"), settings),
        policy=DecisionPolicy(
            confidence_threshold=settings.confidence_threshold,
            require_authentication=settings.require_authentication,
        ),
        trusted_authserv_id=settings.trusted_authserv_id,
        own_addresses=frozenset({settings.from_address.rsplit("<", 1)[-1].rstrip(">").strip().lower()}),
        own_domain=settings.message_id_domain,
        default_language=settings.default_language,
        model=model,
        word_vectors=word_vectors_for_training(settings, model),
        spam_verdicts=settings.spam_verdicts,
        # In this process, with the cheap checks first (``classify``, previews); the worker's App parses
        # in a sandboxed child instead (``App.analyser``).
        parser=partial(parse, limits=limits_of(settings)),
    )


def word_vectors_for_training(settings: Settings, model: TrainedModel | None) -> WordVectors | None:
    """The word vectors a new model would be trained with; the served model's own table when it holds
    the same one (a model carries a copy of the vectors it was trained with), so that a worker keeps
    one copy of it in memory, not two (about 21 MB for the shipped vectors)."""
    vectors = load_word_vectors(settings.effective_word_vectors_dir)
    served = model.features.vectors if model is not None else None
    if vectors is not None and served is not None and vectors.same_table(served):
        return served
    return vectors


def open_mailbox(settings: Settings, *, token_provider: TokenProvider | None = None) -> Mailbox:
    if settings.uses_embedded_mailbox:
        from mailflow.adapters.maildir import MaildirMailbox

        return MaildirMailbox.from_settings(settings)
    from mailflow.adapters.imap import ImapMailbox

    return ImapMailbox.from_settings(settings, token_provider=token_provider)


@dataclass
class App:
    settings: Settings
    clock: Callable[[], datetime] = utc_now
    # The mail worker (``run``, ``poll-once``) is named after a slot of its machine; the desk and
    # other commands must not take one, or a restarted worker would find its predecessor's taken.
    mail_worker: bool = False
    worker_slot: WorkerSlot | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.mail_worker and not self.settings.worker_name:
            self.worker_slot = take_slot(self.settings.data_dir / "workers")

    @cached_property
    def worker_id(self) -> str:
        """The configured name; a mail worker's slot (``adapters/worker_slot.py``: restarted after a
        crash, it takes its predecessor's name and resumes its claims at once); else a name of its own."""
        if self.settings.worker_name:
            return self.settings.worker_name
        return self.worker_slot.name if self.worker_slot else new_worker_id()

    @cached_property
    def engine(self) -> Engine:
        engine = make_engine(self.settings.effective_database_url, ca_file=self.settings.ca_file)
        try:
            ensure_schema(engine, auto_migrate=self.settings.migrates_at_start)
        except Exception:
            engine.dispose()
            raise
        return engine

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def blobs(self) -> FileBlobStore:
        return blob_store(self.settings)

    @cached_property
    def catalogue(self) -> Catalogue:
        return load_catalogue(self.settings.classifiers_dir)

    @cached_property
    def signer(self) -> ThreadSigner:
        path = self.settings.data_dir / "thread-secret-key"
        return ThreadSigner(load_or_create_key(self.settings.thread_secret, path))

    @cached_property
    def model_watch(self) -> ModelWatch:
        return ModelWatch(self.settings.effective_model_dir)

    @cached_property
    def parse_sandbox(self) -> ParseSandbox:
        """The child process that parses every email the worker (or the desk) analyses, within limits."""
        return ParseSandbox(
            limits_of(self.settings),
            timeout=self.settings.parse_timeout,
            memory_mb=self.settings.parse_memory_mb,
        )

    @cached_property
    def analyser(self) -> Analyser:
        self.model_watch  # noqa: B018 — the stamp must predate the model read below
        analyser = build_analyser(
            self.settings, self.catalogue, signer=self.signer, case_lookup=self.case_summary
        )
        return replace(analyser, parser=self.parse_sandbox.parse)

    def refresh_model(self) -> bool:
        """Swap in a newly installed model (retrained here or by another worker); True if swapped."""
        if not self.settings.use_model or not self.model_watch.changed():
            return False
        try:
            model = load_model(self.settings.effective_model_dir)
        except ArtefactError as exc:
            log.warning("new model not loaded, the current one stays: %s", exc)
            return False
        # One attribute assignment: a running analysis keeps the analyser it started with.
        self.__dict__["analyser"] = replace(self.analyser, model=model)
        self.__dict__.pop("processor", None)
        log.info("learned model %s now in use", model.card.version)
        return True

    def case_summary(self, reference: str) -> CaseSummary | None:
        with self.sessions() as session:
            case = session.scalar(select(Case).where(Case.reference == reference))
            if case is None:
                return None
            kinds = session.scalars(
                select(AttachmentRecord.kind)
                .join(Message, Message.id == AttachmentRecord.message_id)
                .where(Message.case_id == case.id)
            ).all()
            return CaseSummary(
                case.reference or reference,
                case.category,
                case.resident_address,
                case.status,
                tuple(dict.fromkeys(kinds)),
            )

    @cached_property
    def composer(self) -> ReplyComposer:
        return ReplyComposer(
            self.settings.templates_dir,
            from_address=self.settings.from_address,
            message_id_domain=self.settings.message_id_domain,
            default_language=self.settings.default_language,
            signer=self.signer,
            clock=self.clock,
        )

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(
            self.sessions,
            worker_id=self.worker_id,
            lease=timedelta(seconds=self.settings.lease_seconds),
            clock=self.clock,
            stale_after=self.heartbeat_stale_after,
        )

    @property
    def heartbeat_stale_after(self) -> timedelta:
        settings = self.settings
        return timedelta(seconds=settings.worker_heartbeat_seconds * settings.worker_heartbeat_misses)

    @cached_property
    def imap_tokens(self) -> TokenProvider | None:
        """One token cache for every IMAP connection of this process (the poller's, the watcher's)."""
        settings = self.settings
        if settings.imap_auth != "oauth2" or settings.uses_embedded_mailbox or not settings.imap_user:
            return None
        from mailflow.oauth2.factory import build_token_provider

        return build_token_provider(settings, settings.imap_user)

    def smtp_tokens(self) -> TokenProvider | None:
        settings = self.settings
        user = settings.smtp_user or settings.imap_user
        if settings.smtp_auth != "oauth2" or not user:
            return None
        if self.imap_tokens is not None and user == settings.imap_user:
            return self.imap_tokens  # the same mailbox: one token serves IMAP and SMTP
        from mailflow.oauth2.factory import build_token_provider

        return build_token_provider(settings, user)

    @cached_property
    def transport(self) -> ReplyTransport:
        if self.settings.smtp_host:
            from mailflow.adapters.smtp import SmtpTransport

            return SmtpTransport.from_settings(self.settings, token_provider=self.smtp_tokens())
        from mailflow.adapters.outbox_dir import DirectoryTransport

        return DirectoryTransport(self.settings.outbox_dir)

    @cached_property
    def outbox(self) -> Outbox:
        settings = self.settings
        return Outbox(
            self.sessions,
            self.transport,
            envelope_from=settings.from_address.rsplit("<", 1)[-1].rstrip(">").strip(),
            worker_id=self.worker_id,
            clock=self.clock,
            retry=RetryPolicy(
                base=timedelta(seconds=settings.outbox_backoff_base),
                max_attempts=settings.outbox_max_attempts,
            ),
            # A send cannot outlast the SMTP timeouts; past this lease it was cut short.
            lease=timedelta(seconds=4 * settings.smtp_timeout + 30),
            stale_after=self.heartbeat_stale_after,
        )

    @cached_property
    def actor(self) -> Actor:
        return Actor(
            blobs=self.blobs,
            composer=self.composer,
            product_context=self.product_context,
            case_prefix=self.settings.case_prefix,
            clock=self.clock,
            limits=ReplyLimits(
                sender_period=timedelta(hours=self.settings.reply_sender_period_hours),
                hourly_cap=self.settings.reply_hourly_cap,
            ),
        )

    def product_context(self, category: str, language: str) -> Mapping[str, Any]:
        return self.catalogue.reply_context(
            category, language, booking_base_url=self.settings.booking_base_url
        )

    @cached_property
    def analyser_without_archive(self) -> Analyser:
        """For previews: no database, so no thread lookups."""
        return build_analyser(self.settings, self.catalogue)

    @cached_property
    def processor(self) -> Processor:
        return Processor(
            sessions=self.sessions, analyse=self.analyser.analyse, actor=self.actor, clock=self.clock
        )

    def open_mailbox(self) -> Mailbox:
        return open_mailbox(self.settings, token_provider=self.imap_tokens)

    def make_ingestor(
        self,
        mailbox: Mailbox,
        should_stop: Callable[[], bool] = lambda: False,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Ingestor:
        self.refresh_model()
        return Ingestor(
            mailbox=mailbox,
            ledger=self.ledger,
            sessions=self.sessions,
            blobs=self.blobs,
            analyse=self.latency.timed(self.analyser.analyse),
            actor=self.actor,
            clock=self.clock,
            batch_size=self.settings.imap_batch_size,
            should_stop=should_stop,
            on_progress=on_progress,
            limits=IntakeLimits(
                max_message_bytes=self.settings.max_message_bytes,
                max_header_bytes=self.settings.max_header_bytes,
                poison_attempts=self.settings.poison_attempts,
            ),
        )

    def worker(self) -> Worker:
        # Built here, before the worker's threads share them (cached_property takes no lock).
        self.imap_tokens  # noqa: B018
        self.transport  # noqa: B018
        return Worker(
            open_mailbox=self.open_mailbox,
            make_ingestor=self.make_ingestor,
            outbox=self.outbox,
            poll_interval=self.settings.poll_interval,
            outbox_interval=self.settings.outbox_interval,
            nightly=self.nightly_retrain
            if self.settings.retrain_enabled and self.settings.use_model
            else None,
            nightly_at=self.settings.retrain_at,
            heartbeat=self.heartbeat,
            watchdog=self.watchdog(),
            retention=self.daily_retention if self.settings.retention_enabled else None,
            retention_at=self.settings.retention_at,
            beat_interval=self.settings.worker_heartbeat_seconds,
            reconnect_max=self.settings.reconnect_max_seconds,
        )

    @cached_property
    def latency(self) -> LatencyRecorder:
        return LatencyRecorder()

    @cached_property
    def heartbeat(self) -> Heartbeat:
        return Heartbeat(self.sessions, self.worker_id, clock=self.clock, latency=self.latency)

    def watchdog(self) -> Watchdog:
        settings = self.settings
        notify = None
        if settings.heartbeat_alert_to:
            notify = mail_notifier(
                self.transport,
                from_address=settings.from_address,
                to=settings.heartbeat_alert_to,
                domain=settings.message_id_domain,
                clock=self.clock,
            )
        silence = timedelta(minutes=settings.heartbeat_alert_minutes)
        return Watchdog(self.heartbeat, silence=silence, clock=self.clock, notify=notify)

    def nightly_retrain(self, stopping: Callable[[], bool]) -> None:
        from mailflow.evaluation.nightly import nightly_retrain

        nightly_retrain(self, stopping=stopping)

    def daily_retention(self) -> None:
        from mailflow.retention.job import daily_retention

        daily_retention(self)

    def close(self) -> None:
        if self.worker_slot is not None:
            self.worker_slot.release()
        if "parse_sandbox" in self.__dict__:
            self.parse_sandbox.close()
        if "engine" in self.__dict__:
            self.engine.dispose()


def command_app(settings: Settings, *, mail_worker: bool = False) -> App:
    """The App of a command-line command: large buffers go back to the system when freed (see
    mailflow/allocator.py) before the model and the first email are read."""
    from mailflow.allocator import return_large_buffers

    return_large_buffers()
    return App(settings, mail_worker=mail_worker)
