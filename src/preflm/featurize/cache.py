"""On-disk feature cache keyed by featurizer spec and text hash, stored as safetensors shards.

A rerun over the same texts embeds nothing; new texts are computed and appended as a new shard.
The key also holds the size and modification time of every local file a spec names (an ``st:``/``lm:``
folder, an adapter), so weights changed in place are never served stale features. A shard that cannot
be read (truncated by a crash, garbage) is reported, set aside as ``*.corrupt`` and its rows recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from safetensors.numpy import load_file, save_file

from preflm.featurize.base import Featurizer

DEFAULT_CACHE_DIR = Path(os.environ.get("PREFLM_CACHE", ".preflm_cache")) / "features"


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def local_weights_identity(spec) -> list:
    """(path, size, mtime_ns) of every file under each local path named in a spec ("model", "adapter", ...).

    Hub ids and names that are not local paths contribute nothing, so their keys stay as before.
    """
    found: list = []
    if isinstance(spec, dict):
        for key in sorted(spec):
            found += local_weights_identity(spec[key])
    elif isinstance(spec, (list, tuple)):
        for value in spec:
            found += local_weights_identity(value)
    elif isinstance(spec, str) and spec and len(spec) < 4096:
        path = Path(spec).expanduser()
        try:
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
            for file in files:
                stat = file.stat()
                found.append([str(file.resolve()), stat.st_size, stat.st_mtime_ns])
        except OSError:
            return found
    return found


def cache_key(spec: dict) -> str:
    """Cache folder name: hash of the featurizer spec and the identity of the local weights it names."""
    payload = json.dumps({"spec": spec, "weights": local_weights_identity(spec)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class CachedFeaturizer:
    """Wraps a featurizer; features of texts seen before are read from disk instead of recomputed."""

    def __init__(self, inner: Featurizer, cache_dir: str | Path | None = None):
        self.inner = inner
        self.directory = Path(cache_dir or DEFAULT_CACHE_DIR) / cache_key(inner.spec())
        self._index: dict[bytes, np.ndarray] | None = None
        self.hits = 0
        self.misses = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def spec(self) -> dict:
        return self.inner.spec()

    def _read_shard(self, shard: Path) -> dict[str, np.ndarray] | None:
        """A shard's keys and features, or None (with a warning, the file set aside) when it is broken."""
        try:
            tensors = load_file(str(shard))
            keys, features = tensors["keys"], tensors["features"]
            if keys.ndim != 2 or keys.shape[1] != 16 or features.ndim != 2 or len(features) != len(keys):
                raise ValueError(f"keys {keys.shape} and features {features.shape} do not fit together")
            if not np.isfinite(features).all():
                raise ValueError("features hold NaN or inf")
        except Exception as err:  # safetensors has its own error type for truncated or garbage files
            corrupt = shard.with_suffix(".corrupt")
            shard.replace(corrupt)
            warnings.warn(
                f"feature cache shard {shard} is unreadable ({' '.join(str(err).split())}); moved it to "
                f"{corrupt.name} and its features will be recomputed",
                stacklevel=3,
            )
            return None
        return {"keys": keys, "features": features}

    def _load(self) -> dict[bytes, np.ndarray]:
        if self._index is None:
            self._index = {}
            for shard in sorted(self.directory.glob("shard-*.safetensors")):
                tensors = self._read_shard(shard)
                if tensors is None:
                    continue
                for key, row in zip(tensors["keys"], tensors["features"]):
                    self._index[key.tobytes()] = row
        return self._index

    def _next_shard(self) -> Path:
        numbers = [int(p.name[6:11]) for p in self.directory.glob("shard-*.*") if p.name[6:11].isdigit()]
        return self.directory / f"shard-{max(numbers, default=-1) + 1:05d}.safetensors"

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
            shard = self._next_shard()
            tmp = shard.with_suffix(f".{os.getpid()}.tmp")
            save_file({"keys": new_keys, "features": computed}, str(tmp))
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            tmp.replace(shard)
            for i, row in zip(todo, computed):
                index[keys[i]] = row
        return np.stack([index[k] for k in keys]).astype(np.float32, copy=False)
