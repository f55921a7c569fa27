"""Evaluate on any dataset in the standard format: load, split, featurize, run methods, write results."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import pandas as pd

from preflm.data import AnswerMatrix, load_preferences, split_answers
from preflm.data.split import DEFAULT_PROTOCOL
from preflm.eval.harness import HarnessConfig, Method, evaluate_methods, j_sweep, standard_methods, summarize
from preflm.factorize import FactorizeConfig
from preflm.factorize.pipeline import featurize_items
from preflm.featurize import DEFAULT_FEATURIZER, CachedFeaturizer, featurizer_from_name

MethodFactory = Callable[[FactorizeConfig], Method]
METHODS: dict[str, MethodFactory] = {}


def register_method(name: str, factory: MethodFactory) -> None:
    """Make a method available to ``preflm evaluate --methods`` (``pref`` itself is always run)."""
    METHODS[name] = factory


def run_evaluation(
    data: str | Path,
    featurizer: str = DEFAULT_FEATURIZER,
    factorize_config: FactorizeConfig | None = None,
    harness_config: HarnessConfig | None = None,
    methods: list[str] | None = None,
    ablations: bool = True,
    known_phi: bool = True,
    j_values: list[int] | None = None,
    new_user_fraction: float = 0.2,
    seed: int = 0,
    protocol: str = DEFAULT_PROTOCOL,
    progress: bool = True,
    user_column: str = "user_id",
) -> tuple[dict, pd.DataFrame]:
    """The whole evaluation of one dataset: the JSON-able summary and the long per-user table."""
    config = factorize_config or FactorizeConfig()
    frame = load_preferences(data, user_column=user_column)
    matrix = AnswerMatrix.from_frame(frame, source=str(data))
    split = split_answers(matrix, new_user_fraction=new_user_fraction, seed=seed, protocol=protocol)
    started = time.perf_counter()
    features = featurize_items(matrix, CachedFeaturizer(featurizer_from_name(featurizer)))
    featurize_seconds = time.perf_counter() - started
    chosen = standard_methods(matrix, config, ablations=ablations, known_phi=known_phi)
    for name in methods or []:
        if name == "pref":
            continue
        if name not in METHODS:
            raise ValueError(f"unknown method {name!r}; known: {sorted(METHODS)}")
        chosen.append(METHODS[name](config))
    table, info = evaluate_methods(features, split, chosen, harness_config, progress)
    results = summarize(table, info)
    if j_values:
        largest = max((harness_config or HarnessConfig()).budgets)
        sweep_budgets = tuple(b for b in (10, 40) if b <= largest) or (largest,)
        results["j_sweep"] = j_sweep(features, split, config, j_values, sweep_budgets, progress=progress)
    results.update(
        dataset=str(data),
        featurizer=featurizer,
        factorize_config=config.to_dict(),
        split_from_file="split" in frame.columns,
        protocol=protocol,
        validation_by=config.validation_by,
        n_items=int(matrix.n_items),
        featurize_seconds=featurize_seconds,
    )
    return results, table


def table_path(results_path: str | Path) -> Path:
    """Where the long table of a results file lives: ``<name>.table.csv.gz`` beside it."""
    path = Path(results_path)
    return path.with_name(path.stem + ".table.csv.gz")


def save_results(results: dict, path: str | Path, table: pd.DataFrame | None = None) -> Path:
    """Write the summary as JSON and, when given, the long table beside it (:func:`table_path`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    if table is not None:
        table.to_csv(table_path(path), index=False)
    return path
