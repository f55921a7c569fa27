"""The ``preflm`` command line: a thin shell over the library.

Naming, the same in every command (aligned with TRL / Hugging Face): ``--reward-model DIR`` is a model
saved by ``preflm train``; ``--model-name-or-path`` a causal LM (hub id, path or a preflm spec);
``--user-id`` names a person and ``--profile`` their profile file (default ``PROFILES_DIR/USER_ID.json``);
``--selector`` chooses questions; ``--output`` is a file and ``--output-dir`` a folder; ``--json``
prints one JSON document on stdout. Global options (``--threads``, ``--quiet``) may also follow the command.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import sys
import types
import typing
from dataclasses import MISSING, fields, replace
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from typer.core import TyperGroup

from preflm import __version__
from preflm.featurize import DEFAULT_FEATURIZER


class _GlobalOptionsGroup(TyperGroup):
    """Accepts the global options after the command too (``preflm rank ... --threads 1``)."""

    FLAGS = ("--quiet", "-q")
    VALUED = ("--threads",)

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, _hoist_global_options(list(args), self.FLAGS, self.VALUED))


def _hoist_global_options(args: list[str], flags, valued) -> list[str]:
    """Move global options found after the command name in front of it (stops at ``--``)."""
    start = 0
    while start < len(args) and args[start].startswith("-"):
        start += 2 if args[start] in valued else 1
    if start >= len(args):
        return args
    head, rest, moved = args[: start + 1], [], []
    tail = args[start + 1 :]
    index = 0
    while index < len(tail):
        arg = tail[index]
        if arg == "--":
            rest.extend(tail[index:])
            break
        if arg in flags or any(arg.startswith(v + "=") for v in valued):
            moved.append(arg)
        elif arg in valued and index + 1 < len(tail):
            moved.extend(tail[index : index + 2])
            index += 1
        else:
            rest.append(arg)
        index += 1
    return moved + head + rest


app = typer.Typer(
    cls=_GlobalOptionsGroup,
    help="Personalize LLM answers to each user with reward factorization (PReF).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console(soft_wrap=True)
"""Messages (progress, notes); silenced by --quiet. Results are written with :func:`_echo`."""
err_console = Console(stderr=True, soft_wrap=True)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"preflm {__version__}")
        raise typer.Exit()


_THREAD_LIMITS: list = []
"""BLAS thread limits set by --threads, kept for the life of the process."""


@app.callback()
def _options(
    threads: Optional[int] = typer.Option(
        None, help="Torch and BLAS CPU threads (e.g. 1 on a small shared machine, where threads fight over cores)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only results and errors (no messages, no progress bars)."),
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Personalize LLM answers to each user with reward factorization (PReF).

    Global options may come before or after the command. Output is plain text (tab-separated tables,
    no colours, no progress bars) when it is not a terminal; --json on rank, onboard, generate and
    evaluate prints one JSON document.
    """
    console.quiet = err_console.quiet = quiet
    if threads is not None:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(threads)
        _THREAD_LIMITS.append(threadpool_limits(limits=threads))


def _fail(message: str) -> None:
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(2)


def _messages(as_json: bool) -> Console:
    """Where human-readable messages go: stderr when stdout carries JSON."""
    return err_console if as_json else console


def _progress() -> bool:
    """Progress bars only for a person watching a terminal."""
    return not console.quiet and sys.stderr.isatty()


def _echo(text: str) -> None:
    typer.echo(text)


def _emit_json(value) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _emit_table(columns: list[str], rows: list[list[str]], title: str | None = None) -> None:
    """A rich table on a terminal, tab-separated lines (header first) otherwise."""
    if sys.stdout.isatty():
        table = Table(*columns, title=title)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    if title:
        console.print(title, highlight=False)
    for row in [columns, *rows]:
        typer.echo("\t".join(str(cell).replace("\t", " ").replace("\n", " ") for cell in row))


def _config_options(skip: tuple[str, ...] = ()):
    """Add one option per FactorizeConfig field (help from the field's metadata) and ``--config FILE``.

    The command receives ``config``: the dataclass defaults, overridden by the JSON file (flat, or the
    ``config.json`` of a saved model), overridden by the options given on the command line.
    """
    from preflm.factorize.config import FactorizeConfig

    hints = typing.get_type_hints(FactorizeConfig)
    chosen = [f for f in fields(FactorizeConfig) if f.name not in skip]

    def decorate(func):
        signature = inspect.signature(func)
        own = [p for p in signature.parameters.values() if p.name != "config"]
        extra = [
            inspect.Parameter(
                "config_file",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Optional[Path],
                default=typer.Option(
                    None, "--config",
                    help="JSON file of training settings (the names below with underscores, or a saved model's "
                    "config.json); options given on the command line win.",
                ),
            )
        ]
        for f in chosen:
            default = f.default if f.default is not MISSING else None
            if isinstance(default, bool):
                default = f"--{'' if default else 'no-'}{f.name.replace('_', '-')}"
            extra.append(
                inspect.Parameter(
                    f.name,
                    inspect.Parameter.KEYWORD_ONLY,
                    annotation=Optional[str if typing.get_origin(hints[f.name]) in (typing.Union, types.UnionType) else hints[f.name]],
                    default=typer.Option(None, help=f"{f.metadata['help']} Default: {default}.", show_default=False),
                )
            )

        @functools.wraps(func)
        def wrapper(**kwargs):
            given = {f.name: kwargs.pop(f.name) for f in chosen}
            config_file = kwargs.pop("config_file")
            try:
                values = _read_config_file(config_file, {f.name for f in chosen}) if config_file else {}
                values.update({k: v for k, v in given.items() if v is not None})
                kwargs["config"] = FactorizeConfig(**values)
            except ValueError as err:
                _fail(str(err))
            return func(**kwargs)

        wrapper.__signature__ = signature.replace(parameters=own + extra)
        wrapper.__annotations__ = {p.name: p.annotation for p in own + extra}
        return wrapper

    return decorate


def _read_config_file(path: Path, allowed: set[str]) -> dict:
    try:
        values = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read the settings file ({err})") from None
    if isinstance(values, dict) and isinstance(values.get("config"), dict) and "format_version" in values:
        values = {k: v for k, v in values["config"].items() if k in allowed}  # a saved model's config.json
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a JSON object of settings")
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {unknown}; known: {sorted(allowed)}")
    return values


REWARD_MODEL = typer.Option(..., "--reward-model", help="A reward model folder saved by `preflm train`.")
USER_ID_HELP = "The person's id; their profile is PROFILES_DIR/USER_ID.json unless --profile is given."
PROFILES_DIR = typer.Option(Path("profiles"), help="Folder of user profiles, one USER_ID.json each.")
PROFILE = typer.Option(None, help="Profile file (overrides --user-id/--profiles-dir).")
AS_JSON = typer.Option(False, "--json", help="Print one JSON document on stdout (messages go to stderr).")
SEED = typer.Option(0, help="Random seed (results are reproducible for a given seed).")


def _profile_path(profile: Optional[Path], user_id: Optional[str], profiles_dir: Path) -> Path:
    if profile is not None:
        return profile
    if user_id is None:
        _fail("give --user-id (or --profile FILE)")
    if not re.fullmatch(r"[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*", user_id):
        _fail(f"user id {user_id!r} cannot be a file name; give --profile FILE as well")
    return profiles_dir / f"{user_id}.json"


@app.command()
@_config_options()
def train(
    data: Path = typer.Argument(..., help="Answers: JSONL/CSV/Parquet file, datasets folder or hub id."),
    output_dir: Path = typer.Option(Path("runs/model"), help="Folder for model.safetensors + config.json."),
    featurizer: str = typer.Option(
        DEFAULT_FEATURIZER, help="Parts joined by '+': ngrams, stats, minilm, minilm-layers, st:<model>, st-layers:<model>, "
        "lm:<model> (frozen causal LM, last token), lm-mean:<model>[@<layer>] (mean-pooled, optionally an inner block)."
    ),
    user_column: str = typer.Option("user_id", help="Column naming the user."),
    backbone: str = typer.Option(
        "none", help="Train a causal-LM backbone too: lora or full (none: features from --featurizer, frozen)."
    ),
    model_name_or_path: str = typer.Option(
        "smollm2", help="Causal LM for --backbone: smollm2 (offline), a hub id or a path."
    ),
    minutes: Optional[float] = typer.Option(None, help="Time budget for --backbone training, in minutes."),
    config=None,
) -> None:
    """Learn base reward functions phi and seen users' weights from many users' answers.

    When the data has a split column only its train rows are used. With --backbone lora|full the LM
    itself is trained in the paper's two phases (multi-GPU via accelerate launch); the saved model is
    used by every other command the same way.
    """
    from preflm.api import PReF, load_training_answers

    if backbone not in ("none", "lora", "full"):
        _fail(f"--backbone must be none, lora or full, got {backbone!r}")
    if output_dir.exists() and not output_dir.is_dir():
        _fail(f"--output-dir {output_dir} is a file, not a folder")
    try:
        matrix = load_training_answers(data, user_column)
        if backbone == "none":
            from preflm.featurize import CachedFeaturizer, featurizer_from_name

            feats = CachedFeaturizer(featurizer_from_name(featurizer))
    except ValueError as err:
        _fail(str(err))
    console.print(f"{matrix.n_answers} answers from {matrix.n_users} users on {matrix.n_pairs} pairs")
    if backbone != "none":
        from preflm.factorize import BackboneConfig, train_backbone

        try:
            backbone_config = BackboneConfig(
                model=model_name_or_path, mode=backbone,
                factorize=replace(config, head="linear", svd_init=True),
                output_dir=str(output_dir), time_budget_minutes=minutes,
            )
        except ValueError as err:
            _fail(str(err))
        model = train_backbone(matrix, backbone_config, progress=_progress())
        console.print(f"held-out accuracy on seen users: {model.validation_accuracy_:.3f}; saved model to {output_dir}")
        return
    rank = _join_process_group()
    try:
        pref = PReF(config, featurizer=feats).fit(matrix, progress=_progress())
        if rank != 0:
            return
        pref.save_pretrained(output_dir)
    except (ValueError, OSError) as err:
        _fail(str(err))
    model = pref.reward_model
    console.print(f"held-out accuracy on seen users: {model.validation_accuracy_:.3f} (step {model.best_step_})")
    if len(model.svd_init_selection_) > 1:
        tried = ", ".join(f"{k} {v['validation_accuracy']:.3f}" for k, v in model.svd_init_selection_.items())
        console.print(f"SVD initialization {'on' if model.svd_init_used_ else 'off'} (held-out accuracy {tried})")
    if model.n_factors_selection_:
        tried = ", ".join(f"J={k} {v['few_answer_accuracy']:.3f}" for k, v in model.n_factors_selection_.items())
        console.print(f"J = {model.config.n_factors} (held-out accuracy of seen users refit from "
                      f"{model.config.selection_answers} answers: {tried})")
    if model.residual_directions_ is not None:
        tried = ", ".join(f"{k} {v['few_answer_accuracy']:.3f}" for k, v in model.residual_selection_.items())
        chosen = f" (held-out accuracy of seen users refit from {model.config.residual_selection_answers} answers: {tried})"
        console.print(f"{model.config.residual_factors} residual base rewards, prior strength "
                      f"{model.config.residual_strength:g}{chosen if tried else ''}")
    console.print(f"saved model to {output_dir}")


def _join_process_group() -> int:
    """Under ``accelerate launch`` / ``torchrun`` (WORLD_SIZE > 1) join the CPU process group; this rank.

    Training is then data-parallel over answers (see ``RewardFactorization.fit``); rank 0 saves.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0
    import torch.distributed

    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo")
    return torch.distributed.get_rank()


def _ask(out: Console, row, number: int, total: int) -> Optional[str]:
    out.rule(f"question {number} of {total}")
    out.print(f"[bold]Prompt:[/bold] {row['prompt']}\n", highlight=False)
    out.print(f"[bold cyan]A:[/bold cyan] {row['response_a']}\n", highlight=False)
    out.print(f"[bold magenta]B:[/bold magenta] {row['response_b']}\n", highlight=False)
    while True:
        reply = typer.prompt("Which do you prefer? [a/b/tie, q to stop]", err=out.stderr).strip().lower()
        if reply in ("a", "b", "tie", "t"):
            return "tie" if reply == "t" else reply
        if reply in ("q", "quit"):
            return None
        out.print("please answer a, b, tie or q")


@app.command()
def onboard(
    reward_model: Path = REWARD_MODEL,
    user_id: Optional[str] = typer.Option(
        None, help=USER_ID_HELP + " Required, except with an --answers file of one user that names them."
    ),
    questions: Optional[Path] = typer.Option(None, help="Interactive: pool of questions (prompt, response_a, response_b)."),
    answers: Optional[Path] = typer.Option(
        None, help="Non-interactive: a file of this user's answers (all are used; --budget/--selector apply to --questions)."
    ),
    budget: int = typer.Option(10, help="How many questions to ask (interactive)."),
    selector: str = typer.Option("active", help="Question selection: active (PReF bandit rule), random or uncertainty."),
    profiles_dir: Path = PROFILES_DIR,
    profile: Optional[Path] = PROFILE,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing profile of this user."),
    resume: bool = typer.Option(False, "--resume", help="Add the new answers to this user's existing profile."),
    seed: int = SEED,
    as_json: bool = AS_JSON,
) -> None:
    """Learn a new user's weights from a few answers: interactively in the terminal or from a file.

    The progress line shows the answers given and the remaining uncertainty: the spread of the user's
    weights still unknown, as a share of the spread among all users (100% = the model knows only the
    population; sqrt of trace(posterior covariance) / trace(prior covariance)). It says how much the
    model has learnt about this user, not how accurate its predictions are.
    """
    from preflm.api import PReF, remaining_uncertainty
    from preflm.data import DataError
    from preflm.onboard import UserProfile

    out = _messages(as_json)
    if (questions is None) == (answers is None):
        _fail("give either --questions (interactive) or --answers (from a file)")
    if overwrite and resume:
        _fail("--overwrite and --resume exclude each other")
    if budget < 1:
        _fail(f"--budget must be at least 1, got {budget}")
    if user_id is None and profile is None and answers is not None:
        try:
            from preflm.data import load_preferences

            unnamed = "\0unnamed"
            ids = load_preferences(answers, default_user=unnamed)["user_id"].unique()
        except (DataError, ValueError) as err:
            _fail(str(err))
        if len(ids) == 1 and ids[0] != unnamed:
            user_id = str(ids[0])
    if user_id is None and profile is None:
        _fail("give --user-id: each person's profile is saved under their id")
    path = _profile_path(profile, user_id, profiles_dir)
    journal = path.with_suffix(".answers.jsonl")
    previous = None
    if path.exists() and not (overwrite or resume):
        _fail(f"{path} exists: --resume adds answers to it, --overwrite replaces it")
    if resume:
        if not path.exists():
            _fail(f"--resume: no profile at {path}")
        try:
            previous = UserProfile.load(path)
        except ValueError as err:
            _fail(str(err))
        if user_id is not None and previous.user_id != user_id:
            _fail(f"{path} is the profile of {previous.user_id!r}, not {user_id!r}")
        user_id = previous.user_id
    try:
        pref = PReF.from_pretrained(reward_model)
        if answers is not None:
            result = pref.onboard(answers, user_id=user_id, resume=previous)
            uncertainty = None
        else:
            session = pref.session(questions, user_id=user_id, selector=selector, seed=seed, resume=previous)
            if overwrite:
                journal.unlink(missing_ok=True)
            start = len(session.asked)
            replayed = session.attach_journal(journal)
            if replayed:
                out.print(f"recovered {replayed} answers of an interrupted session from {journal}")
            total = min(budget, len(session.z) - start)
            try:
                for number in range(len(session.asked) - start + 1, total + 1):
                    index = session.next_question()
                    label = _ask(out, session.questions.iloc[index], number, total)
                    if label is None:
                        break
                    session.record(index, label)
                    out.print(
                        f"[green]{len(session.asked) - start}/{total} answered[/green] ({len(session.asked)} in all) - "
                        f"remaining uncertainty {remaining_uncertainty(session):.0%} of the population's spread"
                    )
            except (KeyboardInterrupt, EOFError, typer.Abort):
                out.print(f"stopped: keeping the {len(session.asked) - start} answers given")
            result = session.profile()
            uncertainty = remaining_uncertainty(session)
    except (DataError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    if not result.answers and path.exists():
        _fail(f"no answers given: {path} is left as it was")
    try:
        result.save(path, overwrite_poorer=overwrite or resume)
    except ValueError as err:
        _fail(str(err))
    journal.unlink(missing_ok=True)
    if as_json:
        summary = {"user_id": result.user_id, "profile": str(path), "answers": len(result.answers),
                   "weights": result.weights}
        if uncertainty is not None:
            summary["remaining_uncertainty"] = uncertainty
        _emit_json(summary)
    else:
        _echo(f"saved profile of {result.user_id} ({len(result.answers)} answers) to {path}")


@app.command()
def rank(
    candidates: Optional[list[str]] = typer.Argument(None, help="Candidate responses (or use --candidates-file)."),
    reward_model: Path = REWARD_MODEL,
    prompt: str = typer.Option(..., help="The prompt the candidates answer."),
    user_id: Optional[str] = typer.Option(None, help=USER_ID_HELP),
    profiles_dir: Path = PROFILES_DIR,
    profile: Optional[Path] = PROFILE,
    candidates_file: Optional[Path] = typer.Option(None, help="One candidate per line, or a JSON list."),
    as_json: bool = AS_JSON,
) -> None:
    """Best-of-N: score candidate responses with the user's personalized reward, best first."""
    from preflm.api import PReF
    from preflm.data.candidates import load_candidates
    from preflm.onboard import UserProfile

    path = _profile_path(profile, user_id, profiles_dir)
    texts = list(candidates or [])
    try:
        if candidates_file is not None:
            texts += load_candidates(candidates_file)
        if not texts:
            _fail("no candidates given")
        pref = PReF.from_pretrained(reward_model)
        user = UserProfile.load(path)
        user.check_model(pref.reward_model)
        ranking = pref.rank(user, prompt, texts, progress=_progress())
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    rows = [
        {"rank": position, "reward": float(ranking.scores[index]), "index": int(index), "candidate": texts[index]}
        for position, index in enumerate(ranking.order, 1)
    ]
    if as_json:
        _emit_json({"user_id": user.user_id, "prompt": prompt, "best": ranking.best, "ranking": rows})
        return
    _emit_table(["rank", "reward", "candidate"], [[str(r["rank"]), f"{r['reward']:+.3f}", r["candidate"]] for r in rows])
    _echo(f"best for {user.user_id}: {ranking.best}")


def _parse_ints(text: str) -> list[int]:
    """'1-40' or '5,10,20' or '1-5,10' -> sorted unique ints."""
    values: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                low, high = part.split("-")
                values.update(range(int(low), int(high) + 1))
            elif part:
                values.add(int(part))
    except ValueError:
        raise ValueError(f"cannot read {text!r} as numbers: use e.g. 1-40 or 5,10,20") from None
    return sorted(values)


PROTOCOL = typer.Option(
    "unseen-prompts",
    help="unseen-prompts: new users are asked and scored only on prompts no seen user answered (how preflm is "
    "used); seen-prompts: the older protocol, their pool and test pairs drawn from all pairs.",
)


@app.command()
def world(
    output: Path = typer.Option(Path("runs/world.jsonl"), help="Where to write the dataset (JSONL)."),
    seed: int = SEED,
    mixture_users: int = typer.Option(36, help="Users with random mixtures over all attributes (besides the 84)."),
    temperature: float = typer.Option(0.2, help="Bradley-Terry temperature of simulated answers."),
    protocol: str = PROTOCOL,
) -> None:
    """Write the offline Attributes world: seen users' answers, new users' pool and test answers."""
    from preflm.simulate import WorldConfig, write_world

    try:
        config = WorldConfig(seed=seed, n_mixture_users=mixture_users, temperature=temperature, protocol=protocol)
    except ValueError as err:
        _fail(str(err))
    path = write_world(output, config)
    console.print(f"wrote {path} (users and their true weights in {path.with_suffix('').name}.users.json)")


@app.command()
def dsp(
    source: Path = typer.Argument(
        ..., help="domain_specific_preference JSON file of the Domain-Specific Preference dataset."
    ),
    output: Path = typer.Option(Path("runs/dsp.jsonl"), help="Where to write the dataset (JSONL)."),
    seed: int = SEED,
    protocol: str = PROTOCOL,
    extra_new_users: int = typer.Option(
        0, min=0, help="More new users (pool/test only), drawn after the rest so every other answer stays the same."
    ),
) -> None:
    """Convert the Domain-Specific Preference data into multi-user answers in the standard format."""
    from preflm.simulate.dsp import write_dsp_dataset

    if not source.is_file():
        _fail(f"{source}: file not found")
    try:
        path = write_dsp_dataset(source, output, seed=seed, protocol=protocol, extra_new_users=extra_new_users)
    except ValueError as err:
        _fail(str(err))
    console.print(f"wrote {path}")


SUMMARY_BUDGETS = (5, 10, 20, 40)


@app.command()
@_config_options(skip=("seed",))
def evaluate(
    data: Path = typer.Argument(..., help="Dataset in the standard format (a split column is honoured)."),
    output: Path = typer.Option(Path("runs/evaluation.json"), help="JSON file of every number."),
    report_dir: Optional[Path] = typer.Option(None, help="Folder for report.md and PNG plots."),
    title: str = typer.Option("preflm evaluation", help="Title of the report."),
    featurizer: str = typer.Option(DEFAULT_FEATURIZER, help="Featurizer name, as for `preflm train`."),
    methods: str = typer.Option("pref", help="Comma-separated: pref and any registered baselines."),
    ablations: bool = typer.Option(True, help="Also run PReF without SVD init and without L2."),
    known_phi: bool = typer.Option(True, help="Also run the known-phi bound when true features exist."),
    j_sweep: str = typer.Option("", help="J values to sweep, e.g. 1-12 (empty: no sweep)."),
    budgets: str = typer.Option("1-40", help="Answer budgets, e.g. 1-40 or 5,10,20."),
    selectors: str = typer.Option("active,random", help="Comma-separated question selectors to compare."),
    seeds: int = typer.Option(3, help="Training seeds per method (intervals cover users and seeds)."),
    seed: int = typer.Option(0, help="Seed of the user split when the data has no split column."),
    protocol: str = PROTOCOL,
    user_column: str = typer.Option("user_id", help="Column naming the user."),
    as_json: bool = AS_JSON,
    config=None,
) -> None:
    """Accuracy and AUC of personalization vs number of answers, per question selector, with 95% intervals.

    Accuracy: share of a new user's held-out answers (ties left out) whose side the model predicts.
    AUC: how well the predicted probabilities rank the user's choices. known_phi: PReF given the true
    attribute scores as base rewards (an upper bound on what learning phi can reach). oracle: the
    true reward (how predictable the simulated answers are at all).
    """
    import shlex

    from preflm.data import DataError
    from preflm.eval.harness import HarnessConfig
    from preflm.eval.report import write_report
    from preflm.eval.run import run_evaluation, save_results, table_path
    from preflm.onboard import get_selector

    out = _messages(as_json)
    _register_plugins()
    try:
        harness = HarnessConfig(
            budgets=_parse_ints(budgets), strategies=tuple(s.strip() for s in selectors.split(",")), seeds=seeds
        )
        if not harness.budgets or min(harness.budgets) < 0:
            raise ValueError(f"--budgets must name answer counts >= 0, got {budgets!r}")
        for strategy in harness.strategies:
            get_selector(strategy)
        results, long_table = run_evaluation(
            data,
            featurizer=featurizer,
            factorize_config=config,
            harness_config=harness,
            methods=[m.strip() for m in methods.split(",") if m.strip()],
            ablations=ablations,
            known_phi=known_phi,
            j_values=_parse_ints(j_sweep) if j_sweep else None,
            seed=seed,
            protocol=protocol,
            user_column=user_column,
            progress=_progress(),
        )
    except (DataError, ValueError) as err:
        _fail(str(err))
    command = "preflm " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    results["command"] = command
    save_results(results, output, long_table)
    out.print(f"wrote {output} and {table_path(output)}")
    if report_dir is not None:
        out.print(f"wrote {write_report(results, report_dir, title, command, long_table)}")
    rows = _summary_rows(results)
    if as_json:
        _emit_json({"output": str(output), "summary": rows})
        return
    columns = ["method", "selector", *(f"acc@{b}" for b in SUMMARY_BUDGETS)]
    _emit_table(columns, [
        [r["method"], r["selector"], *(f"{r['accuracy'][str(b)]:.3f}" if str(b) in r["accuracy"] else "-"
                                      for b in SUMMARY_BUDGETS)]
        for r in rows
    ])


def _summary_rows(results: dict) -> list[dict]:
    """Mean accuracy and AUC per method, selector and budget (the oracle as selector '-')."""
    rows = []
    for name, entry in results["methods"].items():
        for strategy, per_budget in entry["strategies"].items():
            rows.append({
                "method": name,
                "selector": strategy,
                "accuracy": {b: v["accuracy"]["mean"] for b, v in per_budget.items()},
                "auc": {b: v["auc"]["mean"] for b, v in per_budget.items() if "auc" in v},
            })
    if "oracle" in results:
        budgets = sorted({b for r in rows for b in r["accuracy"]}, key=int)
        rows.append({"method": "oracle", "selector": "-",
                     "accuracy": {b: results["oracle"]["accuracy"]["mean"] for b in budgets}, "auc": {}})
    return rows


def _register_plugins() -> None:
    """Baselines register themselves with the harness when the package is present."""
    try:
        from preflm.baselines import register_baselines
    except ImportError:
        return
    register_baselines()


@app.command()
def demo(
    output_dir: Path = typer.Option(Path("runs/demo"), help="Where the world, model and profile go."),
    seed: int = SEED,
    llm: bool = typer.Option(True, help="Also personalize SmolLM2's answers (--no-llm skips loading the LLM)."),
) -> None:
    """The main job: world -> base rewards -> onboard a new user with 10 questions -> personalized picks."""
    from preflm.demo import run_demo

    run_demo(output_dir, seed=seed, console=console, llm=llm)


GENERATION_METHODS = ("best-of-n", "guided", "prompting", "default")


def _candidate_rows(texts: list[str], scores, styles, chosen: int) -> list[dict]:
    order = sorted(range(len(texts)), key=lambda i: -scores[i])
    return [
        {"rank": rank, "reward": float(scores[i]), "style": styles[i] or "(default)", "candidate": texts[i],
         "chosen": i == chosen}
        for rank, i in enumerate(order, 1)
    ]


@app.command()
def generate(
    prompt: str = typer.Argument(..., help="The user's prompt."),
    reward_model: Path = REWARD_MODEL,
    user_id: Optional[str] = typer.Option(None, help=USER_ID_HELP + " Not needed for --method default."),
    profiles_dir: Path = PROFILES_DIR,
    profile: Optional[Path] = PROFILE,
    model_name_or_path: str = typer.Option(
        "smollm2", help="The LLM: smollm2 (offline), hf:<hub id or path> or openai:<base_url>#<model>."
    ),
    num_candidates: int = typer.Option(
        8, "--num-candidates", "-n", help="Candidates (best-of-n, prompting) or continuations per block (guided)."
    ),
    method: str = typer.Option("best-of-n", help="best-of-n, guided, prompting or default."),
    show_candidates: bool = typer.Option(False, help="Also print the candidates and rewards."),
    styles: bool = typer.Option(True, help="Diversify candidates with style instructions."),
    max_new_tokens: int = typer.Option(128, help="Longest answer, in tokens (longer answers are cut)."),
    temperature: float = typer.Option(0.8, help="Sampling temperature of the candidates."),
    block_tokens: int = typer.Option(16, help="Guided decoding: tokens per block."),
    system_prompt: Optional[str] = typer.Option(None, help="Base system prompt."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, mps (local models)."),
    seed: int = SEED,
    as_json: bool = AS_JSON,
) -> None:
    """Generate the answer this user would prefer: best-of-n reranked by their reward, reward-guided
    decoding, the LLM prompted with what they like, or the plain default (greedy) answer."""
    from preflm.factorize import RewardFactorization
    from preflm.generate.generators import GenerationConfig, GenerationError, load_generator
    from preflm.generate.personalize import (
        DEFAULT_STYLES,
        CandidateSet,
        guided_decoding,
        personalized_best_of_n,
        prompting_baseline,
    )
    from preflm.onboard import UserProfile

    out = _messages(as_json)
    if method not in GENERATION_METHODS:
        _fail(f"unknown method {method!r}: use one of {', '.join(GENERATION_METHODS)}")
    path = None
    if profile is not None or user_id is not None:
        path = _profile_path(profile, user_id, profiles_dir)
    elif method != "default":
        _fail(f"--method {method} needs --user-id (or --profile FILE)")
    if num_candidates < 1:
        _fail("--num-candidates must be at least 1")
    candidates, extra = None, {}
    try:
        config = GenerationConfig(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, system_prompt=system_prompt)
        model = RewardFactorization.load(reward_model)
        user = UserProfile.load(path) if path is not None else None
        if user is not None:
            user.check_model(model)
        llm = load_generator(model_name_or_path, device=device)
        style_list = DEFAULT_STYLES if styles else None
        who = user.user_id if user else "default"
        if method == "default":
            answer = llm.generate([prompt], 1, config.replace(temperature=0.0))[0][0]
        elif method == "best-of-n":
            picks = personalized_best_of_n(llm, model, user, [prompt], num_candidates, config, style_list)
            answer = picks.answers(0)[0]
            ranking = picks.ranking(0, 0)
            candidates = _candidate_rows(ranking.candidates, ranking.scores, picks.candidates.styles[0], ranking.best_index)
        elif method == "guided":
            guided = guided_decoding(
                llm, model, user, [prompt], num_candidates, block_tokens, config, style_list, progress=_progress()
            )
            answer = guided.texts[0][0]
            extra = {"blocks": guided.steps, "tokens_generated": guided.tokens_generated,
                     "reward": float(guided.rewards[0, 0])}
        else:
            if style_list is None:
                raise ValueError("--method prompting probes the user's taste with styled candidates: drop --no-styles")
            probes = CandidateSet.generate(llm, [prompt], num_candidates, config, style_list)
            prompted = prompting_baseline(llm, model, user, [prompt], config.replace(temperature=0.0), probes)
            answer = prompted.texts[0][0]
            scores = probes.rewards(model, user)[0, 0]
            candidates = _candidate_rows(probes.candidates[0], scores, probes.styles[0], -1)
            extra = {"system_prompt": prompted.system_prompts[0]}
    except (GenerationError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    name = getattr(llm, "name", model_name_or_path)
    truncated = bool(getattr(answer, "truncated", False))
    if as_json:
        document = {"user_id": who, "method": method, "generator": name, "prompt": prompt, "answer": answer,
                    "truncated": truncated, "max_new_tokens": max_new_tokens, **extra}
        if candidates is not None:
            document["candidates"] = candidates
        _emit_json(document)
        return
    if show_candidates and candidates is not None:
        title = f"{len(candidates)} candidates scored for {who}" if method == "best-of-n" else f"style probes scored for {who}"
        _emit_table(["rank", "reward", "style", "candidate"],
                    [[("* " if c["chosen"] else "") + str(c["rank"]), f"{c['reward']:+.3f}", c["style"], c["candidate"]]
                     for c in candidates], title=title)
    if show_candidates and "blocks" in extra:
        out.print(f"{extra['blocks']} blocks, {extra['tokens_generated']} tokens generated, reward {extra['reward']:+.3f}")
    if show_candidates and "system_prompt" in extra:
        out.print(Panel(extra["system_prompt"], title="system prompt given to the LLM"))
    if sys.stdout.isatty():
        Console().print(Panel(answer or "(empty answer)", title=f"{method} answer for {who}", subtitle=name))
    else:
        _echo(f"{method} answer for {who} ({name}):")
        _echo(answer)
    if truncated:
        out.print(f"(the answer was cut off at --max-new-tokens {max_new_tokens}; raise it for the whole answer)")


def _option_value(text: str):
    """``--option`` values: true/false, none, numbers, else the text itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@app.command()
def convert(
    name: str = typer.Argument(..., help="prism, tldr, multipref, arena or personalllm."),
    source: str = typer.Argument(..., help="The dataset as downloaded (file or folder), or hf:<id> or hf:<id>#<config> (online)."),
    output: Path = typer.Option(..., help="Output file: .jsonl, .csv or .parquet."),
    min_answers: int = typer.Option(10, help="Fewest answers a user needs (before and after the split)."),
    dedup: bool = typer.Option(True, help="Keep only the first of a user's repeated answers to one prompt and pair."),
    new_user_fraction: float = typer.Option(0.2, help="Share of users that are new (pool/test)."),
    heldout_fraction: float = typer.Option(0.3, help="Share of prompts answered by both seen and new users that are held out."),
    test_fraction: float = typer.Option(0.4, help="Share of held-out prompts used for test (the rest is the pool)."),
    seed: int = typer.Option(0, help="Seed of the user and prompt split."),
    max_rows: Optional[int] = typer.Option(None, help="Read only this many source rows (a quick look)."),
    option: Optional[list[str]] = typer.Option(
        None, "--option", "-o", help="Dataset option KEY=VALUE, repeatable (e.g. -o workers=pal for tldr; see docs/convert.md)."
    ),
) -> None:
    """Convert a public multi-user preference dataset into answers with an unseen-prompt split."""
    from preflm.data import DataError
    from preflm.data.convert import ConvertConfig, SplitConfig
    from preflm.data.convert import convert as run_convert
    from preflm.data.convert import write_answers

    options = {}
    for item in option or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            _fail(f"--option takes KEY=VALUE, got {item!r}")
        options[key.strip()] = _option_value(value)
    try:
        split = SplitConfig(new_user_fraction, heldout_fraction, test_fraction, seed)
        config = ConvertConfig(min_answers=min_answers, dedup=dedup, max_rows=max_rows, split=split)
        frame, summary = run_convert(name, source, config, **options)
        path = write_answers(frame, output)
    except (DataError, ValueError) as err:
        _fail(str(err))
    table = Table("", "count", title=f"{summary.dataset}: {summary.source}")
    rows = [
        ("source rows read", summary.rows_read),
        ("candidate answers", summary.answers_built),
        ("answers written", summary.answers_written),
        ("users (seen / new)", f"{summary.users} ({summary.seen_users} / {summary.new_users})"),
        ("prompts", summary.prompts),
        *((f"split {name}", count) for name, count in summary.splits.items()),
        *((f"[yellow]dropped:[/yellow] {reason}", count) for reason, count in summary.dropped.items()),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    for note in summary.notes:
        console.print(f"note: {note}")
    console.print(f"wrote {path}")


# --- service (preflm serve, preflm users) -------------------------------------------------------------


@app.command()
def serve(
    reward_model: Path = REWARD_MODEL,
    questions: Optional[Path] = typer.Option(None, help="Onboarding questions (prompt, response_a, response_b); required."),
    db: Optional[str] = typer.Option(None, help="SQLAlchemy URL (default: SQLite file preflm.db here; postgresql+psycopg://...)."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind (0.0.0.0 exposes the service to the network)."),
    port: int = typer.Option(8000, help="TCP port to listen on."),
    model_name_or_path: Optional[str] = typer.Option(
        None, help="The LLM behind /v1/chat/completions: openai:URL#model, hf:<id or path> or smollm2."
    ),
    workers: int = typer.Option(1, help="Worker processes (each loads the model)."),
    budget: int = typer.Option(10, help="Most onboarding questions per user."),
    target_confidence: float = typer.Option(0.9, help="Onboarding stops earlier once a profile's confidence reaches this."),
    num_candidates: int = typer.Option(4, "--num-candidates", "-n", help="Candidates drawn per chat completion (best-of-n)."),
    log_level: str = typer.Option("info", help="uvicorn log level (warning keeps load tests quiet)."),
    lock_timeout_ms: int = typer.Option(
        5000, help="PostgreSQL: how long an answer waits for its user's row lock before a 503 (0: no limit)."
    ),
) -> None:
    """Run the HTTP service: onboarding, scoring, OpenAI-compatible chat and an OpenRLHF reward endpoint."""
    import os
    import tempfile
    from dataclasses import replace

    import uvicorn

    from preflm.data import DataError, load_questions
    from preflm.serve.store import check_question_set
    from preflm.factorize.model import model_id_of
    from preflm.serve.core import question_set_hash
    from preflm.serve.db import make_engine, migrate
    from preflm.serve.settings import ADMIN_KEY_ENV, SETTINGS_ENV, ServeSettings, default_db_url

    if questions is None:
        _fail("give --questions FILE (prompt, response_a, response_b): a model folder holds no question texts to ask")
    try:
        settings = ServeSettings(
            model_dir=str(reward_model), questions=str(questions), db_url=db or default_db_url(),
            generator=model_name_or_path, budget=budget, target_confidence=target_confidence,
            chat_candidates=num_candidates, db_lock_timeout_ms=lock_timeout_ms,
        )
        model_id_of(reward_model)  # a missing or broken model fails here, before any worker starts
        question_hash = question_set_hash(load_questions(questions))
        engine = make_engine(settings.db_url)
        migrate(engine)
        check_question_set(engine, question_hash)
        engine.dispose()
    except (DataError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    except Exception as err:  # a database driver error: name it instead of a traceback
        _fail(f"cannot open the database {settings.db_url}: {type(err).__name__}: {err}")
    if not settings.admin_key:
        console.print(f"[yellow]{ADMIN_KEY_ENV} is not set:[/yellow] admin endpoints refuse every key; "
                      "create users with `preflm users create`")
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]binding {host}:[/yellow] the service is reachable from the network (no TLS here)")
    settings = replace(settings, migrate=False)
    if workers <= 1:
        from preflm.serve.app import create_app

        try:
            application = create_app(settings)
        except (DataError, FileNotFoundError, ValueError) as err:
            _fail(str(err))
        uvicorn.run(application, host=host, port=port, log_level=log_level)
        return
    os.environ[SETTINGS_ENV] = settings.to_json()
    with tempfile.TemporaryDirectory(prefix="preflm-metrics-") as metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        uvicorn.run("preflm.serve.app:app_from_env", factory=True, host=host, port=port, workers=workers, log_level=log_level)


users_app = typer.Typer(help="Manage the service's users (admin), in the database `preflm serve` uses.", no_args_is_help=True)
app.add_typer(users_app, name="users")
_DB_HELP = "SQLAlchemy URL of the service database (default: SQLite file preflm.db here)."


def _service_engine(db: Optional[str]):
    from preflm.serve.db import make_engine, migrate
    from preflm.serve.settings import default_db_url

    try:
        engine = make_engine(db or default_db_url())
        migrate(engine)
    except ValueError as err:
        _fail(str(err))
    except Exception as err:  # a database driver error: name it instead of a traceback
        _fail(f"cannot open the database {db or default_db_url()}: {type(err).__name__}: {err}")
    return engine


@users_app.command("create")
def users_create(
    db: Optional[str] = typer.Option(None, help=_DB_HELP),
    user_id: Optional[str] = typer.Option(None, help="The user's id (default: a random one)."),
) -> None:
    """Create a user and print their API key (shown once; only its hash is stored)."""
    from preflm.serve import store

    try:
        user_id, key = store.create_user(_service_engine(db), user_id)
    except store.StoreError as err:
        _fail(err.message)
    console.print(f"user_id: {user_id}")
    console.print(f"api_key: {key}", soft_wrap=True)


@users_app.command("list")
def users_list(db: Optional[str] = typer.Option(None, help=_DB_HELP)) -> None:
    """Users with their answer count and profile confidence."""
    from preflm.serve import store

    table = Table("user_id", "created", "answers", "confidence")
    for row in store.list_users(_service_engine(db)):
        table.add_row(row["id"], str(row["created_at"]), str(row["n_answers"]), f"{row['confidence']:.2f}")
    console.print(table)


@users_app.command("delete")
def users_delete(user_id: str = typer.Argument(..., help="The id of the user to delete."), db: Optional[str] = typer.Option(None, help=_DB_HELP)) -> None:
    """Delete a user with their answers and profile."""
    from preflm.serve import store

    try:
        store.delete_user(_service_engine(db), user_id)
    except store.StoreError as err:
        _fail(err.message)
    console.print(f"deleted user {user_id}")


_BASE_URL_HELP = "Where participants reach `preflm serve` (links are BASE-URL/invite/TOKEN)."


@users_app.command("invite")
def users_invite(
    db: Optional[str] = typer.Option(None, help=_DB_HELP),
    user_id: Optional[str] = typer.Option(None, help="Invite this user (created when missing; default: a new random one)."),
    expires_hours: float = typer.Option(72.0, help="Hours until the link expires; it also works only once."),
    base_url: str = typer.Option("http://127.0.0.1:8000", help=_BASE_URL_HELP),
) -> None:
    """Print a single-use, expiring link to the onboarding web page."""
    from preflm.serve import invites, store

    try:
        user_id, token = invites.create_invite(_service_engine(db), user_id, expires_hours)
    except store.StoreError as err:
        _fail(err.message)
    console.print(f"user_id: {user_id}")
    console.print(f"link: {base_url.rstrip('/')}/invite/{token}", soft_wrap=True)


study_app = typer.Typer(help="Blind A/B studies of the default answer against the personalized one.", no_args_is_help=True)
app.add_typer(study_app, name="study")


@study_app.command("create")
def study_create(
    prompts: Path = typer.Option(..., exists=True, dir_okay=False, help="Study prompts: one a line, or a CSV/JSONL with a prompt column."),
    num_candidates: int = typer.Option(4, "--num-candidates", "-n", help="Candidates drawn per prompt for the personalized answer (best-of-n)."),
    budget: int = typer.Option(10, help="Most onboarding answers per participant before judging."),
    participants: int = typer.Option(..., help="How many participant links to make."),
    expires_hours: float = typer.Option(24 * 14, help="Hours until the participant links expire."),
    base_url: str = typer.Option("http://127.0.0.1:8000", help=_BASE_URL_HELP),
    db: Optional[str] = typer.Option(None, help=_DB_HELP),
) -> None:
    """Create a study and print one single-use link per participant."""
    from preflm.serve import store, study

    try:
        study_id, links = study.create_study(_service_engine(db), study.read_prompts(prompts), num_candidates, budget,
                                             participants, expires_hours)
    except store.StoreError as err:
        _fail(err.message)
    console.print(f"study_id: {study_id}")
    for user_id, token in links:
        console.print(f"{user_id}: {base_url.rstrip('/')}/invite/{token}", soft_wrap=True)


@study_app.command("report")
def study_report(
    study_id: str = typer.Argument(..., help="The study's id (printed by `preflm study create`)."),
    output: Optional[Path] = typer.Option(None, help="Write every judgment to this CSV file."),
    as_json: bool = AS_JSON,
    db: Optional[str] = typer.Option(None, help=_DB_HELP),
) -> None:
    """Win rate of the personalized answer with a Wilson 95% interval (ties apart), per prompt and participant."""
    from preflm.serve import store, study

    try:
        report = study.study_report(_service_engine(db), study_id)
    except store.StoreError as err:
        _fail(err.message)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(study.report_csv(report))
    if as_json:
        _emit_json(report)
        return
    o = report["overall"]
    rate = "n/a" if o["win_rate"] is None else f"{o['win_rate']:.3f}"
    console.print(f"study {study_id}: {report['participants']} participants, {report['prompts']} prompts")
    console.print(f"personalized win rate {rate} (95% Wilson {o['ci_low']:.3f}-{o['ci_high']:.3f}); "
                  f"wins {o['wins']}, losses {o['losses']}, ties {o['ties']} (ties excluded from the rate)")
    _emit_table(["prompt", "wins", "losses", "ties", "win rate"],
                [[str(r["prompt_index"]), str(r["wins"]), str(r["losses"]), str(r["ties"]),
                  "n/a" if r["win_rate"] is None else f"{r['win_rate']:.3f}"] for r in report["per_prompt"]], "per prompt")
    _emit_table(["participant", "wins", "losses", "ties", "win rate"],
                [[r["participant"], str(r["wins"]), str(r["losses"]), str(r["ties"]),
                  "n/a" if r["win_rate"] is None else f"{r['win_rate']:.3f}"] for r in report["per_participant"]],
                "per participant")
    if output is not None:
        console.print(f"wrote {output}")


def main() -> None:
    app(prog_name="preflm")


if __name__ == "__main__":
    main()
