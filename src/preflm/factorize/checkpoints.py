"""Numbered training checkpoints on disk, shared by the encoder and the backbone trainers.

A checkpoint is written into ``<name>.partial`` and renamed to ``<name>`` only when complete (it holds a
``state.json``), so a kill never leaves a broken newest checkpoint; older ones are pruned after.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def numbered_checkpoints(root: str | Path, prefix: str) -> list[Path]:
    """Complete checkpoints ``root/<prefix>-<number>``, oldest first."""
    start = len(prefix) + 1
    found = [p for p in Path(root).glob(f"{prefix}-*") if p.name[start:].isdigit() and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name[start:]))


def publish_checkpoint(partial: Path, final: Path, prefix: str, keep: int) -> None:
    """Rename a complete ``partial`` folder to ``final``, then keep only the newest ``keep`` checkpoints."""
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    for old in numbered_checkpoints(final.parent, prefix)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
