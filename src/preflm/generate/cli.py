"""``preflm generate``: answer a prompt the way one user likes it (registered by the main CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

METHODS = ("best-of-n", "guided", "prompting", "default")
console = Console()


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def _candidate_table(title: str, texts: list[str], scores, styles, chosen: int) -> Table:
    table = Table("rank", "reward", "style", "candidate", title=title, show_lines=True)
    order = sorted(range(len(texts)), key=lambda i: -scores[i])
    for rank, i in enumerate(order, 1):
        mark = "[bold green]*[/bold green] " if i == chosen else ""
        table.add_row(f"{mark}{rank}", f"{scores[i]:+.3f}", styles[i] or "(default)", texts[i])
    return table


def generate_command(
    prompt: str = typer.Argument(..., help="The user's prompt."),
    model_dir: Path = typer.Option(..., "--model", help="A reward model saved by `preflm train`."),
    user: Optional[Path] = typer.Option(None, "--user", help="The user's profile saved by `preflm onboard`."),
    generator: str = typer.Option(
        "smollm2", "--generator", help="smollm2 (offline), hf:<hub id or path> or openai:<base_url>#<model>."
    ),
    n: int = typer.Option(8, "--n", help="Candidates (best-of-n, prompting) or continuations per block (guided)."),
    method: str = typer.Option("best-of-n", "--method", help="best-of-n, guided, prompting or default."),
    show_candidates: bool = typer.Option(False, "--show-candidates", help="Also print the candidates and rewards."),
    styles: bool = typer.Option(True, "--styles/--no-styles", help="Diversify candidates with style instructions."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens", help="Longest answer, in tokens."),
    temperature: float = typer.Option(0.8, "--temperature", help="Sampling temperature of the candidates."),
    block_tokens: int = typer.Option(16, "--block-tokens", help="Guided decoding: tokens per block."),
    system_prompt: Optional[str] = typer.Option(None, "--system-prompt", help="Base system prompt."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, mps (local models)."),
    seed: int = typer.Option(0, "--seed"),
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

    if method not in METHODS:
        _fail(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if method != "default" and user is None:
        _fail(f"--method {method} needs --user PROFILE.json")
    if n < 1:
        _fail("--n must be at least 1")
    try:
        config = GenerationConfig(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, system_prompt=system_prompt)
        model = RewardFactorization.load(model_dir)
        profile = UserProfile.load(user) if user is not None else None
        llm = load_generator(generator, device=device)
        style_list = DEFAULT_STYLES if styles else None
        who = profile.user_id if profile else "default"
        if method == "default":
            answer = llm.generate([prompt], 1, config.replace(temperature=0.0))[0][0]
        elif method == "best-of-n":
            picks = personalized_best_of_n(llm, model, profile, [prompt], n, config, style_list)
            answer = picks.answers(0)[0]
            if show_candidates:
                ranking = picks.ranking(0, 0)
                console.print(
                    _candidate_table(f"{n} candidates scored for {who}", ranking.candidates, ranking.scores, picks.candidates.styles[0], ranking.best_index)
                )
        elif method == "guided":
            guided = guided_decoding(llm, model, profile, [prompt], n, block_tokens, config, style_list, progress=True)
            answer = guided.texts[0][0]
            if show_candidates:
                console.print(f"{guided.steps} blocks, {guided.tokens_generated} tokens generated, reward {guided.rewards[0, 0]:+.3f}")
        else:
            probes = CandidateSet.generate(llm, [prompt], n, config, DEFAULT_STYLES)
            prompted = prompting_baseline(llm, model, profile, [prompt], config.replace(temperature=0.0), probes)
            answer = prompted.texts[0][0]
            if show_candidates:
                scores = probes.rewards(model, profile)[0, 0]
                console.print(_candidate_table(f"style probes scored for {who}", probes.candidates[0], scores, probes.styles[0], -1))
                console.print(Panel(prompted.system_prompts[0], title="system prompt given to the LLM"))
    except (GenerationError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    console.print(Panel(answer or "(empty answer)", title=f"{method} answer for {who}", subtitle=getattr(llm, "name", generator)))
