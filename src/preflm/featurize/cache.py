"""On-disk feature cache keyed by featurizer spec and text hash, stored as safetensors shards.

A rerun over the same texts embeds nothing; new texts are computed and appended as a new shard.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from safetensors.numpy import load_file, save_file

from preflm.featurize.base import Featurizer

DEFAULT_CACHE_DIR = Path(os.environ.get("PREFLM_CACHE", ".preflm_cache")) / "features"


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class CachedFeaturizer:
    """Wraps a featurizer; features of texts seen before are read from disk instead of recomputed."""

    def __init__(self, inner: Featurizer, cache_dir: str | Path | None = None):
        self.inner = inner
        spec_key = hashlib.sha256(json.dumps(inner.spec(), sort_keys=True).encode()).hexdigest()[:16]
        self.directory = Path(cache_dir or DEFAULT_CACHE_DIR) / spec_key
        self._index: dict[bytes, np.ndarray] | None = None
        self.hits = 0
        self.misses = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def spec(self) -> dict:
        return self.inner.spec()

    def _load(self) -> dict[bytes, np.ndarray]:
        if self._index is None:
            self._index = {}
            for shard in sorted(self.directory.glob("shard-*.safetensors")):
                tensors = load_file(str(shard))
                for key, row in zip(tensors["keys"], tensors["features"]):
                    self._index[key.tobytes()] = row
        return self._index

    def transform(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        index = self._load()
        keys = [_digest(f"{p}\x00{r}") for p, r in zip(prompts, responses)]
        todo = sorted({k: i for i, k in enumerate(keys) if k not in index}.values())
        self.hits += len(keys) - len(todo)
        self.misses += len(todo)
        if todo:
            computed = np.asarray(
                self.inner.transform([prompts[i] for i in todo], [responses[i] for i in todo]), dtype=np.float32
            )
            new_keys = np.frombuffer(b"".join(keys[i] for i in todo), dtype=np.uint8).reshape(len(todo), 16)
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / "spec.json").write_text(json.dumps(self.inner.spec(), indent=2))
            shard = self.directory / f"shard-{len(list(self.directory.glob('shard-*.safetensors'))):05d}.safetensors"
            tmp = shard.with_suffix(".tmp")
            save_file({"keys": new_keys, "features": computed}, str(tmp))
            tmp.replace(shard)
            for i, row in zip(todo, computed):
                index[keys[i]] = row
        return np.stack([index[k] for k in keys]).astype(np.float32, copy=False)
