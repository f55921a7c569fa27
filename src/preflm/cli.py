"""The ``preflm`` command line: a thin shell over the library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from preflm.generate.cli import generate_command

app = typer.Typer(
    help="Personalize LLM answers to each user with reward factorization (PReF).",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


@app.callback()
def _options(
    threads: Optional[int] = typer.Option(
        None, help="Torch CPU threads (e.g. 1 on a small shared machine, where threads fight over cores)."
    ),
) -> None:
    """Personalize LLM answers to each user with reward factorization (PReF)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def _config(factors, head, svd_init, l2, seed, max_steps):
    from preflm.factorize import FactorizeConfig

    return FactorizeConfig(n_factors=factors, head=head, svd_init=svd_init, l2=l2, seed=seed, max_steps=max_steps)


@app.command()
def train(
    data: Path = typer.Argument(..., help="Answers: JSONL/CSV/Parquet file, datasets folder or hub id."),
    out: Path = typer.Option(Path("runs/model"), help="Folder for model.safetensors + config.json."),
    featurizer: str = typer.Option(
        "minilm+stats", help="minilm+stats, minilm, stats, st:<model>[+stats] or lm:<model>[+stats] (frozen causal LM)."
    ),
    factors: int = typer.Option(8, help="J, the number of base reward functions."),
    head: str = typer.Option("mlp", help="mlp (one hidden layer, the default) or linear (as in the paper)."),
    svd_init: bool = typer.Option(True, help="SVD initialization (--no-svd-init for the ablation)."),
    l2: float = typer.Option(1e-3, help="L2 regularization strength (0 for the ablation)."),
    max_steps: int = typer.Option(2000, help="Most optimizer steps (early stopping on held-out answers)."),
    user_column: str = typer.Option("user_id", help="Column naming the user."),
    backbone: str = typer.Option(
        "none", help="Train a causal-LM backbone too: lora or full (none: features from --featurizer, frozen)."
    ),
    lm: str = typer.Option("smollm2", help="Causal LM for --backbone: smollm2 (offline), a hub id or a path."),
    minutes: Optional[float] = typer.Option(None, help="Time budget for --backbone training."),
    seed: int = typer.Option(0),
) -> None:
    """Learn base reward functions phi and seen users' weights from many users' answers.

    When the data has a ``split`` column only its ``train`` rows are used. With ``--backbone lora|full``
    the LM itself is trained in the paper's two phases (see preflm.factorize.backbone; multi-GPU via
    ``accelerate launch``); the saved model is used by every other command the same way.
    """
    from preflm.data import AnswerMatrix, load_preferences
    from preflm.factorize.pipeline import featurize_items, train_reward_model
    from preflm.featurize import CachedFeaturizer, featurizer_from_name

    try:
        frame = load_preferences(data, user_column=user_column)
        if "split" in frame.columns:
            frame = frame[frame["split"] == "train"]
            if frame.empty:
                _fail(f"{data}: the split column has no 'train' rows")
        matrix = AnswerMatrix.from_frame(frame, source=str(data))
        config = _config(factors, head, svd_init, l2, seed, max_steps)
        feats = CachedFeaturizer(featurizer_from_name(featurizer)) if backbone == "none" else None
    except ValueError as err:
        _fail(str(err))
    console.print(f"{matrix.n_answers} answers from {matrix.n_users} users on {matrix.n_pairs} pairs")
    if backbone != "none":
        from preflm.factorize import BackboneConfig, train_backbone

        if backbone not in ("lora", "full"):
            _fail(f"--backbone must be none, lora or full, got {backbone!r}")
        config = BackboneConfig(
            model=lm, mode=backbone, n_factors=factors, l2=l2, seed=seed, output_dir=str(out),
            time_budget_minutes=minutes,
        )
        model = train_backbone(matrix, config)
        console.print(f"held-out accuracy on seen users: {model.validation_accuracy_:.3f}; saved model to {out}")
        return
    features = featurize_items(matrix, feats)
    model = train_reward_model(matrix, features, feats, config)
    model.save(out)
    console.print(f"held-out accuracy on seen users: {model.validation_accuracy_:.3f} (step {model.best_step_})")
    console.print(f"saved model to {out}")


def _ask(console: Console, index: int, row, number: int, total: int) -> Optional[float]:
    console.rule(f"question {number} of {total}")
    console.print(f"[bold]Prompt:[/bold] {row['prompt']}\n")
    console.print(f"[bold cyan]A:[/bold cyan] {row['response_a']}\n")
    console.print(f"[bold magenta]B:[/bold magenta] {row['response_b']}\n")
    while True:
        reply = typer.prompt("Which do you prefer? [a/b/tie, q to stop]").strip().lower()
        if reply in ("a", "b", "tie", "t"):
            return {"a": 1.0, "b": 0.0, "tie": 0.5, "t": 0.5}[reply]
        if reply in ("q", "quit"):
            return None
        console.print("please answer a, b, tie or q")


@app.command()
def onboard(
    model_dir: Path = typer.Argument(..., help="A model saved by `preflm train`."),
    out: Path = typer.Option(Path("runs/profile.json"), help="Where to save the user's profile (JSON)."),
    questions: Optional[Path] = typer.Option(None, help="Pool of questions (prompt, response_a, response_b)."),
    answers: Optional[Path] = typer.Option(
        None, help="Non-interactive: a file of this user's answers (all are used; --budget/--selector apply to --questions)."
    ),
    budget: int = typer.Option(10, help="How many questions to ask."),
    selector: str = typer.Option("active", help="active (PReF bandit rule), random or uncertainty."),
    user_id: str = typer.Option("new-user"),
    seed: int = typer.Option(0),
) -> None:
    """Learn a new user's weights from a few answers: interactively in the terminal or from a file."""
    from preflm.data import DataError, load_preferences, load_questions
    from preflm.factorize import RewardFactorization
    from preflm.onboard import OnboardingSession

    try:
        model = RewardFactorization.load(model_dir)
        if answers is not None:
            given = load_preferences(answers, default_user=user_id)
            users_in_file = given["user_id"].unique()
            if len(users_in_file) > 1:
                if user_id not in users_in_file:
                    _fail(f"{answers} holds answers of {len(users_in_file)} users; pick one with --user-id "
                          f"(e.g. {', '.join(map(str, users_in_file[:3]))})")
                given = given[given["user_id"] == user_id].reset_index(drop=True)
            session = OnboardingSession.from_questions(model, given, user_id=user_id, model_path=str(model_dir))
            for index, label in enumerate(given["preference"]):
                session.record(index, float(label))
        elif questions is not None:
            pool = load_questions(questions)
            session = OnboardingSession.from_questions(
                model, pool, selector=selector, user_id=user_id, model_path=str(model_dir), seed=seed
            )
            total = min(budget, len(pool))
            for number in range(1, total + 1):
                index = session.next_question()
                label = _ask(console, index, pool.iloc[index], number, total)
                if label is None:
                    break
                session.record(index, label)
                console.print(
                    f"[green]{len(session.asked)}/{total} answered[/green] - the model now predicts this user's "
                    f"choices with {session.confidence():.0%} confidence"
                )
        else:
            _fail("give --questions (interactive) or --answers (from a file)")
    except (DataError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    session.profile().save(out)
    console.print(f"saved profile of {user_id} ({len(session.asked)} answers) to {out}")


@app.command()
def rank(
    model_dir: Path = typer.Argument(..., help="A model saved by `preflm train`."),
    user: Path = typer.Option(..., help="A profile saved by `preflm onboard`."),
    prompt: str = typer.Option(..., help="The prompt the candidates answer."),
    candidates: list[str] = typer.Argument(None, help="Candidate responses (or use --candidates-file)."),
    candidates_file: Optional[Path] = typer.Option(None, help="One candidate per line, or a JSON list."),
) -> None:
    """Best-of-N: score candidate responses with the user's personalized reward and print the best."""
    from preflm.factorize import RewardFactorization
    from preflm.generate import best_of_n
    from preflm.onboard import UserProfile

    texts = list(candidates or [])
    if candidates_file is not None:
        raw = candidates_file.read_text()
        texts += json.loads(raw) if raw.lstrip().startswith("[") else [l for l in raw.splitlines() if l.strip()]
    if not texts:
        _fail("no candidates given")
    try:
        model = RewardFactorization.load(model_dir)
        profile = UserProfile.load(user)
        ranking = best_of_n(model, profile.weight_vector, prompt, texts)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    table = Table("rank", "reward", "candidate")
    for position, index in enumerate(ranking.order, 1):
        table.add_row(str(position), f"{ranking.scores[index]:+.3f}", texts[index])
    console.print(table)
    console.print(f"[bold]best for {profile.user_id}:[/bold] {ranking.best}")


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


@app.command()
def world(
    out: Path = typer.Option(Path("runs/world.jsonl"), help="Where to write the dataset (JSONL)."),
    seed: int = typer.Option(0),
    mixture_users: int = typer.Option(36, help="Users with random mixtures over all attributes (besides the 84)."),
    temperature: float = typer.Option(0.2, help="Bradley-Terry temperature of simulated answers."),
) -> None:
    """Write the offline Attributes world: seen users' answers, new users' pool and test answers."""
    from preflm.simulate import WorldConfig, write_world

    path = write_world(out, WorldConfig(seed=seed, n_mixture_users=mixture_users, temperature=temperature))
    console.print(f"wrote {path} (users and their true weights in {path.with_suffix('').name}.users.json)")


@app.command()
def dsp(
    source: Path = typer.Argument(Path("../shared/data/dsp/domain_specific_preference.part1.json")),
    out: Path = typer.Option(Path("runs/dsp.jsonl")),
    seed: int = typer.Option(0),
) -> None:
    """Convert the Domain-Specific Preference data into multi-user answers in the standard format."""
    from preflm.simulate.dsp import write_dsp_dataset

    if not source.is_file():
        _fail(f"{source}: file not found")
    console.print(f"wrote {write_dsp_dataset(source, out, seed=seed)}")


@app.command()
def evaluate(
    data: Path = typer.Argument(..., help="Dataset in the standard format (a split column is honoured)."),
    out: Path = typer.Option(Path("runs/evaluation.json"), help="JSON file of every number."),
    report: Optional[Path] = typer.Option(None, help="Folder for report.md and PNG plots."),
    title: str = typer.Option("preflm evaluation"),
    featurizer: str = typer.Option("minilm+stats"),
    methods: str = typer.Option("pref", help="Comma-separated: pref and any registered baselines."),
    factors: int = typer.Option(8, help="J for PReF."),
    head: str = typer.Option("mlp", help="mlp or linear."),
    svd_init: bool = typer.Option(True, help="--no-svd-init trains PReF without SVD initialization."),
    l2: float = typer.Option(1e-3, help="L2 strength for PReF (0 = no regularization)."),
    ablations: bool = typer.Option(True, help="Also run PReF without SVD init and without L2."),
    known_phi: bool = typer.Option(True, help="Also run the known-phi bound when true features exist."),
    j_sweep: str = typer.Option("", help="J values to sweep, e.g. 1-12 (empty: no sweep)."),
    budgets: str = typer.Option("1-40", help="Answer budgets, e.g. 1-40 or 5,10,20."),
    strategies: str = typer.Option("active,random"),
    seeds: int = typer.Option(3),
    seed: int = typer.Option(0, help="Seed of the user split when the data has no split column."),
    user_column: str = typer.Option("user_id", help="Column naming the user."),
) -> None:
    """Accuracy and AUC of personalization vs number of answers, active vs random, with 95% intervals."""
    import shlex
    import sys

    from preflm.data import DataError
    from preflm.eval.harness import HarnessConfig
    from preflm.eval.report import write_report
    from preflm.eval.run import run_evaluation, save_results, table_path

    from preflm.onboard import get_selector

    _register_plugins()
    try:
        harness = HarnessConfig(
            budgets=_parse_ints(budgets), strategies=tuple(s.strip() for s in strategies.split(",")), seeds=seeds
        )
        if not harness.budgets or min(harness.budgets) < 0:
            raise ValueError(f"--budgets must name answer counts >= 0, got {budgets!r}")
        for strategy in harness.strategies:
            get_selector(strategy)
        results, long_table = run_evaluation(
            data,
            featurizer=featurizer,
            factorize_config=_config(factors, head, svd_init, l2, 0, 2000),
            harness_config=harness,
            methods=[m.strip() for m in methods.split(",") if m.strip()],
            ablations=ablations,
            known_phi=known_phi,
            j_values=_parse_ints(j_sweep) if j_sweep else None,
            seed=seed,
            user_column=user_column,
        )
    except (DataError, ValueError) as err:
        _fail(str(err))
    command = "preflm " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    results["command"] = command
    save_results(results, out, long_table)
    console.print(f"wrote {out} and {table_path(out)}")
    if report is not None:
        console.print(f"wrote {write_report(results, report, title, command, long_table)}")
    _print_summary(results)


def _print_summary(results: dict) -> None:
    table = Table("method", "strategy", *(f"acc@{b}" for b in (5, 10, 20, 40)))
    for name, entry in results["methods"].items():
        for strategy, per_budget in entry["strategies"].items():
            cells = [f"{per_budget[str(b)]['accuracy']['mean']:.3f}" if str(b) in per_budget else "-" for b in (5, 10, 20, 40)]
            table.add_row(name, strategy, *cells)
    if "oracle" in results:
        table.add_row("oracle", "-", *([f"{results['oracle']['accuracy']['mean']:.3f}"] * 4))
    console.print(table)


def _register_plugins() -> None:
    """Baselines register themselves with the harness when the package is present."""
    try:
        from preflm.baselines import register_baselines
    except ImportError:
        return
    register_baselines()


@app.command()
def demo(
    workdir: Path = typer.Option(Path("runs/demo"), help="Where the world, model and profile go."),
    seed: int = typer.Option(0),
    llm: bool = typer.Option(True, help="Also personalize SmolLM2's answers (--no-llm skips loading the LLM)."),
) -> None:
    """The main job: world -> base rewards -> onboard a new user with 10 questions -> personalized picks."""
    from preflm.demo import run_demo

    run_demo(workdir, seed=seed, console=console, llm=llm)


app.command("generate")(generate_command)


# --- service (preflm serve, preflm users) -------------------------------------------------------------


@app.command()
def serve(
    model_dir: Path = typer.Argument(..., help="A model saved by `preflm train`."),
    questions: Optional[Path] = typer.Option(None, help="Onboarding questions (prompt, response_a, response_b); required."),
    db: Optional[str] = typer.Option(None, help="SQLAlchemy URL (default: SQLite file preflm.db here; postgresql+psycopg://...)."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind (0.0.0.0 exposes the service to the network)."),
    port: int = typer.Option(8000),
    generator: Optional[str] = typer.Option(None, help="For /v1/chat/completions: openai:URL#model, hf:<id or path> or smollm2."),
    workers: int = typer.Option(1, help="Worker processes (each loads the model)."),
    budget: int = typer.Option(10, help="Most onboarding questions per user."),
    target_confidence: float = typer.Option(0.9, help="Onboarding stops earlier once a profile's confidence reaches this."),
    candidates: int = typer.Option(4, help="Candidates drawn per chat completion (best-of-n)."),
    log_level: str = typer.Option("info", help="uvicorn log level (warning keeps load tests quiet)."),
) -> None:
    """Run the HTTP service: onboarding, scoring, OpenAI-compatible chat and an OpenRLHF reward endpoint."""
    import os
    import tempfile
    from dataclasses import replace

    import uvicorn

    from preflm.data import DataError, load_questions
    from preflm.serve.store import check_question_set
    from preflm.serve.core import model_id, question_set_hash
    from preflm.serve.db import make_engine, migrate
    from preflm.serve.settings import ADMIN_KEY_ENV, SETTINGS_ENV, ServeSettings, default_db_url

    if questions is None:
        _fail("give --questions FILE (prompt, response_a, response_b): a model folder holds no question texts to ask")
    try:
        settings = ServeSettings(
            model_dir=str(model_dir), questions=str(questions), db_url=db or default_db_url(), generator=generator,
            budget=budget, target_confidence=target_confidence, chat_candidates=candidates,
        )
        model_id(model_dir)
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
def users_delete(user_id: str = typer.Argument(...), db: Optional[str] = typer.Option(None, help=_DB_HELP)) -> None:
    """Delete a user with their answers and profile."""
    from preflm.serve import store

    try:
        store.delete_user(_service_engine(db), user_id)
    except store.StoreError as err:
        _fail(err.message)
    console.print(f"deleted user {user_id}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
