"""``mailflow train`` and ``mailflow bench classify``: the learned model's commands.

Registered on the main command group by ``mailflow.cli``; the settings arrive as the click context's
object. Heavy imports (scikit-learn, the pipeline) wait until a command runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mailflow.errors import ConfigurationError
from mailflow.settings import Settings

if TYPE_CHECKING:
    from mailflow.evaluation.run import Observed
    from mailflow.pipeline import Analyser

HEADLINE = ("harmful_rate", "automation_rate", "category_accuracy")
DIRECTORY = click.Path(exists=True, file_okay=False, path_type=Path)
JOBS = click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes reading the emails (attached documents are the slow part): up to one per core.",
)
AUTHSERV = click.option(
    "--authserv-id",
    help="The receiving server whose Authentication-Results count (default: setting trusted_authserv_id).",
)


@click.command("train")
@click.argument("directories", nargs=-1, type=DIRECTORY)
@click.option(
    "--staff/--no-staff",
    default=True,
    show_default=True,
    help="Also learn from the emails staff decided on the web desk (read from the database).",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Model directory to write (default: the configured model directory).",
)
@click.option("--force", is_flag=True, help="Install the new model even when it is not as good.")
@click.option(
    "--cv",
    "folds",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Cross-validation folds for the figures written to an installed model's manifest (0: none).",
)
@JOBS
@AUTHSERV
@click.pass_obj
def train_command(
    settings: Settings,
    directories: tuple[Path, ...],
    staff: bool,
    output: Path | None,
    force: bool,
    folds: int,
    jobs: int,
    authserv_id: str | None,
) -> None:
    """Retrain the learned model on DIRECTORIES (default: setting training_corpora) and staff labels.

    A fifth of the examples (per category, fixed seed) is held out; a model trained on the rest and
    the installed model are both scored there, rules and model combined. The new model — trained on
    every example — is installed only if it harms no more and automates no fewer of those emails
    (or with --force); the replaced manifest is kept under history/.
    """
    from mailflow.classification.learning.training import TrainingError
    from mailflow.evaluation.corpus import CorpusError
    from mailflow.evaluation.retrain import record_result, retrain

    chosen = directories or tuple(settings.training_corpora)
    analyser = _analyser(settings, with_model=False, authserv_id=authserv_id)
    app = _app_for_labels(settings) if staff else None
    try:
        result = retrain(
            analyser,
            settings.effective_model_dir,
            directories=chosen,
            sessions=app.sessions if app else None,
            blobs=app.blobs if app else None,
            output=output,
            force=force,
            folds=folds,
            progress=_progress,
            jobs=jobs,
        )
        if app is not None:
            record_result(app.sessions, result, actor="mailflow train", now=app.clock())
    except (CorpusError, TrainingError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if app is not None:
            app.close()
    verdict = result.verdict
    if verdict.held_out:
        click.echo(f"held-out {verdict.held_out} emails, {verdict.candidate.line()}")
        click.echo(f"held-out {verdict.held_out} emails, {verdict.current.line()}")
    if result.installed is None or verdict.model is None:
        click.echo(f"kept the installed model: {verdict.reason}")
        return
    card = verdict.model.card
    click.echo(
        f"model {card.version}: {sum(card.examples.values())} emails "
        f"({result.staff} labelled by staff), {len(verdict.model.categories)} categories"
    )
    if card.left_out:
        left = ", ".join(f"{category} ({n})" for category, n in card.left_out.items())
        click.echo(f"left out (too few examples, the rules alone decide them): {left}")
    click.echo(f"installed in {result.installed}: {verdict.reason}")


def _app_for_labels(settings: Settings):
    """The database holding the staff's labels; None (with a note) when there is none yet."""
    from mailflow.bootstrap import App

    url = settings.effective_database_url
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).is_file():
        _progress("no database yet: no staff labels to learn from")
        return None
    return App(settings)


@click.group("bench")
def bench() -> None:
    """Measure mailflow on labelled emails."""


@bench.command("classify")
@click.argument("directory", type=DIRECTORY)
@click.option("--cv", "folds", type=click.IntRange(min=2), help="K-fold cross-validation of the model.")
@click.option("--rules-only", is_flag=True, help="Leave the learned model out.")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
@click.option(
    "--aggregate",
    is_flag=True,
    help="Figures only: no email named (for a frozen evaluation corpus).",
)
@JOBS
@AUTHSERV
@click.pass_obj
def bench_classify(
    settings: Settings,
    directory: Path,
    folds: int | None,
    rules_only: bool,
    as_json: bool,
    aggregate: bool,
    jobs: int,
    authserv_id: str | None,
) -> None:
    """Classify DIRECTORY's labelled emails and report how well (harmful and automation rates, …).

    Without --cv the installed model is used (or the rules alone when there is none): figures on
    emails the model was trained on are optimistic. With --cv K every email is scored by a model
    trained on the other folds only.
    """
    from mailflow.evaluation.metrics import figures
    from mailflow.evaluation.report import as_dict, render
    from mailflow.evaluation.run import cross_validate, score

    if folds and rules_only:
        raise click.UsageError("--cv measures the model: it cannot be combined with --rules-only")
    analyser = _analyser(settings, with_model=not rules_only and not folds, authserv_id=authserv_id)
    observed = _observe(analyser, (directory,), jobs)
    run = (
        cross_validate(analyser, observed, folds, progress=_progress) if folds else score(analyser, observed)
    )
    thresholds = analyser.model.card.thresholds if analyser.model is not None else {}
    report = as_dict(
        figures(run.outcomes), run.outcomes, corpus=str(directory), mode=run.mode, thresholds=thresholds
    )
    if analyser.model is not None and analyser.model.card.thresholds:
        report["operating_point"] = dict(analyser.model.card.thresholds)
    elif folds:
        report["operating_point"] = None  # each fold's model chose its own on its training part
    if run.notes:
        report["notes"] = run.notes
    if aggregate:
        report["harmful"] = []  # the figures say how many; which ones would unseal the corpus
    if not analyser.trusted_authserv_id:
        report.setdefault("notes", []).append(
            "no trusted_authserv_id configured: DMARC verdicts are not read (rule 2 never applies)"
        )
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    click.echo(render(report))
    for note in report.get("notes", []):
        click.echo(f"note: {note}")


def _analyser(settings: Settings, *, with_model: bool, authserv_id: str | None) -> Analyser:
    from mailflow.bootstrap import build_analyser

    changes: dict[str, Any] = {"use_model": with_model and settings.use_model}
    if authserv_id:
        changes["trusted_authserv_id"] = authserv_id
    try:
        return build_analyser(settings.model_copy(update=changes))
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


def _observe(analyser: Analyser, directories: Sequence[Path], jobs: int = 1) -> list[Observed]:
    from mailflow.evaluation.corpus import CorpusError, read_corpora
    from mailflow.evaluation.run import observe_all

    try:
        emails = list(read_corpora(directories))
    except CorpusError as exc:
        raise click.ClickException(str(exc)) from exc
    _progress(f"{len(emails)} labelled emails")
    observed = observe_all(analyser, emails, progress=_progress, jobs=jobs)
    failed = [o for o in observed if o.seen is None]
    if failed:
        _progress(f"{len(failed)} could not be analysed: {', '.join(o.email.name for o in failed)}")
    return observed


def _progress(message: str) -> None:
    click.echo(message, err=True)
