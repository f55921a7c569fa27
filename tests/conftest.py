import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytest_plugins = ["serve_helpers"]  # serve_model and fake_llm fixtures for the service and web tests


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Keep each test's feature cache in its own folder."""
    monkeypatch.setattr("preflm.featurize.cache.DEFAULT_CACHE_DIR", tmp_path / "feature-cache")


def pytest_configure(config):
    """One torch thread: the tests' tensors are tiny, and threads fight on small shared machines."""
    import torch

    torch.set_num_threads(1)
