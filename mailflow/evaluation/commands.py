"""``mailflow train`` and ``mailflow bench classify``: the learned model's commands.

Registered on the main command group by ``mailflow.cli``; the settings arrive as the click context's
object. Heavy imports (scikit-learn, the pipeline) wait until a command runs.
"""

from __future__ import annotations

import hashlib
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
AUTHSERV = click.option(
    "--authserv-id",
    help="The receiving server whose Authentication-Results count (default: setting trusted_authserv_id).",
)


@click.command("train")
@click.argument("directories", nargs=-1, required=True, type=DIRECTORY)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Model directory to write (default: the configured model directory).",
)
@click.option(
    "--cv",
    "folds",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Cross-validation folds for the figures written to the manifest (0: no evaluation).",
)
@AUTHSERV
@click.pass_obj
def train_command(
    settings: Settings,
    directories: tuple[Path, ...],
    output: Path | None,
    folds: int,
    authserv_id: str | None,
) -> None:
    """Train the learned model on DIRECTORIES of .eml files with labels.jsonl, and install it."""
    from mailflow.evaluation.metrics import figures
    from mailflow.evaluation.report import as_dict, summary
    from mailflow.evaluation.run import cross_validate, examples, score
    from mailflow.learning.artefact import save_model
    from mailflow.learning.model import TrainingError, train

    analyser = _analyser(settings, with_model=False, authserv_id=authserv_id)
    observed = _observe(analyser, directories)
    evaluation: dict[str, Any] = {}
    if folds >= 2:
        corpus = _names(directories)
        run = cross_validate(analyser, observed, folds, progress=_progress)
        report = as_dict(figures(run.outcomes), run.outcomes, corpus=corpus, mode=run.mode)
        rules = score(analyser, observed)
        baseline = as_dict(figures(rules.outcomes), rules.outcomes, corpus=corpus, mode=rules.mode)
        evaluation = summary(report) | {
            "rules_only": {
                key: baseline[key] for key in ("harmful_rate", "automation_rate", "category_accuracy")
            },
            "settings": {
                "model_weight": analyser.model_weight,
                "confidence_threshold": analyser.policy.confidence_threshold,
                "trusted_authserv_id": analyser.trusted_authserv_id,
            },
        }
        click.echo(_figures_line(report), err=True)
        click.echo(_figures_line(baseline), err=True)
    try:
        model = train(examples(observed), corpus=_describe(directories, len(observed)))
    except TrainingError as exc:
        raise click.ClickException(str(exc)) from exc
    target = output or settings.effective_model_dir
    save_model(model.with_evaluation(evaluation), target)
    card = model.card
    click.echo(
        f"model {card.version}: {sum(card.examples.values())} emails, {len(model.categories)} categories"
    )
    if card.left_out:
        left = ", ".join(f"{category} ({n})" for category, n in card.left_out.items())
        click.echo(f"left out (too few examples, the rules alone decide them): {left}")
    click.echo(f"written to {target}")


@click.group("bench")
def bench() -> None:
    """Measure mailflow on labelled emails."""


@bench.command("classify")
@click.argument("directory", type=DIRECTORY)
@click.option("--cv", "folds", type=click.IntRange(min=2), help="K-fold cross-validation of the model.")
@click.option("--rules-only", is_flag=True, help="Leave the learned model out.")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
@AUTHSERV
@click.pass_obj
def bench_classify(
    settings: Settings,
    directory: Path,
    folds: int | None,
    rules_only: bool,
    as_json: bool,
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
    observed = _observe(analyser, (directory,))
    run = (
        cross_validate(analyser, observed, folds, progress=_progress) if folds else score(analyser, observed)
    )
    report = as_dict(figures(run.outcomes), run.outcomes, corpus=str(directory), mode=run.mode)
    if run.notes:
        report["notes"] = run.notes
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


def _observe(analyser: Analyser, directories: Sequence[Path]) -> list[Observed]:
    from mailflow.evaluation.corpus import CorpusError, read_corpora
    from mailflow.evaluation.run import observe_all

    try:
        emails = list(read_corpora(directories))
    except CorpusError as exc:
        raise click.ClickException(str(exc)) from exc
    _progress(f"{len(emails)} labelled emails")
    observed = observe_all(analyser, emails, progress=_progress)
    failed = [o for o in observed if o.seen is None]
    if failed:
        _progress(f"{len(failed)} could not be analysed: {', '.join(o.email.name for o in failed)}")
    return observed


def _progress(message: str) -> None:
    click.echo(message, err=True)


def _names(directories: Sequence[Path]) -> str:
    return ", ".join(str(d) for d in directories)


def _describe(directories: Sequence[Path], emails: int) -> str:
    """Which corpora, down to the hash of their labels: enough to tell two trainings apart."""
    parts = []
    for directory in directories:
        labels = hashlib.sha256((directory / "labels.jsonl").read_bytes()).hexdigest()[:12]
        parts.append(f"{directory.resolve().name} (labels.jsonl sha256 {labels}…)")
    return f"{emails} emails: {', '.join(parts)}"


def _figures_line(report: dict[str, Any]) -> str:
    def value(figure: dict[str, Any] | None) -> str:
        return "—" if not figure or figure["value"] is None else f"{figure['value']:.1%}"

    return (
        f"{report['mode']}: harmful {value(report['harmful_rate'])}, "
        f"automation {value(report['automation_rate'])}, category {value(report['category_accuracy'])}, "
        f"model alone {value(report['model_accuracy'])}"
    )
