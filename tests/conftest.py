"""Shared pytest set-up and test factories (tiny corpora, tiny checkpoints), made by code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPE_DIR = REPO_ROOT / "egs2" / "librilight_ae"

# Two cores are shared by every test process: no thread oversubscription, no OpenMP spinning.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def recipe_dir() -> Path:
    return RECIPE_DIR
