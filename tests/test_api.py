import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import preflm
from preflm import OnboardingSession, PReF, UserProfile

ROOT = Path(__file__).resolve().parents[1]


def python_example() -> str:
    """The python block under '## Python' in README.md, else the one in docs/adopters.md."""
    for path in (ROOT / "README.md", ROOT / "docs" / "adopters.md"):
        text = path.read_text() if path.is_file() else ""
        found = re.search(r"^## Python\b.*?^```python\n(.*?)^```", text, flags=re.S | re.M)
        if found:
            return found.group(1)
    pytest.fail("no ```python block under a '## Python' heading in README.md or docs/adopters.md")


def test_readme_python_example_runs_as_written(tmp_path, monkeypatch, capsys):
    code = python_example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 15
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README python example", "exec"), namespace)
    profile, ranking = namespace["profile"], namespace["ranking"]
    assert isinstance(profile, UserProfile) and len(profile.answers) == 10
    assert ranking.best in ranking.candidates and capsys.readouterr().out.strip() == ranking.best
    assert len(namespace["session"].asked) == 1
    assert (tmp_path / "my-model" / "model.safetensors").is_file()


def test_public_names_resolve():
    for name in preflm.__all__:
        assert getattr(preflm, name) is not None, name
    with pytest.raises(AttributeError):
        preflm.no_such_name


def _answers(n_users=10, n_pairs=24, seed=0):
    """Brief users prefer the short response, wordy users the long one."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for i in range(n_pairs):
            short, long = f"Yes, {i}.", f"Here is a long and detailed answer number {i}, with context and examples."
            a, b = (short, long) if rng.random() < 0.5 else (long, short)
            brief = u % 2 == 0
            rows.append({"user_id": f"u{u}", "prompt": f"q{i}", "response_a": a, "response_b": b,
                         "preference": "a" if (a == short) == brief else "b"})
    return pd.DataFrame(rows)


def test_fit_onboard_rank_save_roundtrip(tmp_path):
    frame = _answers()
    model = PReF(featurizer="stats", n_factors=2, max_steps=300).fit(frame)
    brief = [{"prompt": "q1", "response_a": "Ok.", "response_b": "A long answer with much detail and many words here.",
              "preference": "a"} for _ in range(3)]
    profile = model.onboard(brief, user_id="brief")
    candidates = ["A very long and wordy answer that covers every possible detail at length.", "Sure."]
    assert model.rank(profile, "q9", candidates).best == "Sure."
    path = model.save_pretrained(tmp_path / "m")
    again = PReF.from_pretrained(path)
    assert np.allclose(again.rewards(profile, ["q9"] * 2, candidates), model.rewards(profile, ["q9"] * 2, candidates))

    questions = frame[["prompt", "response_a", "response_b"]].drop_duplicates().head(8)
    session = again.session(questions, user_id="carol", seed=1)
    assert isinstance(session, OnboardingSession)
    for label in ("a", "b", "tie"):
        session.record(session.next_question(), label)
    assert session.labels == [1.0, 0.0, 0.5]
    resumed = again.session(questions, user_id="carol", resume=session.profile())
    assert len(resumed.asked) == 3 and np.allclose(resumed.weights, session.weights)
    assert resumed.next_question() >= 3, "answered questions come first and are not asked again"
    more = again.onboard(brief[:1], resume=session.profile())
    assert more.user_id == "carol" and len(more.answers) == 4


def test_fit_uses_train_split_and_rejects_bad_input(tmp_path):
    frame = _answers()
    frame["split"] = np.where(frame["user_id"] == "u0", "test", "train")
    model = PReF(featurizer="stats", n_factors=2, max_steps=50).fit(frame)
    assert "u0" not in set(model.reward_model.user_ids_)
    with pytest.raises(ValueError, match="no 'train' rows"):
        PReF(featurizer="stats").fit(frame.assign(split="test"))
    with pytest.raises(ValueError, match="row 0.*preference"):
        PReF(featurizer="stats").fit(frame.assign(preference="left"))
    with pytest.raises(RuntimeError, match="not fitted"):
        PReF().rank([0.0, 0.0], "p", ["x"])
    with pytest.raises(ValueError, match="pick one with user_id"):
        model.onboard(frame)


def test_wheel_lists_no_exact_pins(tmp_path):
    """The wheel built from the repo requires ranges, so it installs without replacing an app's torch."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), "."],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("preflm-*.whl")
    assert wheel.name.startswith(f"preflm-{preflm.__version__}-")
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith("METADATA"))).decode()
        names = archive.namelist()
        (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
        assert "preflm = preflm.cli:main" in archive.read(entry_points).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert any(r.startswith("Requires-Dist: torch") for r in requires)
    assert not [r for r in requires if "==" in r.split(";")[0]]
    assert {"serve", "lm", "dev"} <= {line.split(": ")[1] for line in metadata.splitlines() if line.startswith("Provides-Extra:")}
    assert "preflm/__main__.py" in names and any(n.startswith("preflm/simulate/data/") for n in names)


def test_constraints_pin_every_direct_dependency():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    text = (ROOT / "pyproject.toml").read_text()
    names = re.findall(r'^\s*"([A-Za-z0-9_.-]+)[<>=!~]', text, flags=re.M)
    names += re.findall(r'"([A-Za-z0-9_.-]+)>=', text)
    for name in set(names) - {"setuptools"}:
        assert name.lower().replace("_", "-") in pins, f"{name} has no exact version in constraints.txt"
    assert pins["torch"] == "2.13.0"
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text()
