"""What the digits demo does the same way on every framework: the config and the data splits."""

from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

#: shares of sklearn's 1797 digits: the search validates on one held-out part, the report tests on another
VALIDATION_SHARE = 0.2
TEST_SHARE = 0.2


def load_config(args: argparse.Namespace, sample_size: list[int] | None = None) -> Any:
    """The config file, with the command line's overrides of the search settings.

    :param sample_size: replaces ``input_info.sample_size`` (the file has PyTorch's NCHW layout; Keras
        models take channels last).
    """
    from aac.core import load_config as load

    config = copy.deepcopy(dict(load(args.config)))
    overrides = {
        "initial_training_phase_epochs": args.initial_epochs,
        "patience_epochs": args.patience,
        "maximal_total_epochs": args.max_epochs,
    }
    config["accuracy_aware_training"]["params"].update({k: v for k, v in overrides.items() if v is not None})
    if sample_size is not None:
        config["input_info"] = {**config.get("input_info", {}), "sample_size": list(sample_size)}
    return load(config)


def epochs_per_optimizer(config: Any) -> int:
    """How long one optimizer from the loop's ``configure_optimizers_fn`` trains: a compression level's
    ``patience_epochs`` in the adaptive loop (each level starts a fresh one), the whole run in early exit.
    The fine-tuning schedules anneal the learning rate over it."""
    from aac.core.config import ADAPTIVE

    params = config.accuracy_aware_training
    return params.patience_epochs if params.mode == ADAPTIVE else params.maximal_total_epochs


@dataclass(frozen=True)
class Digits:
    """sklearn's 8x8 digits scaled to [0, 1] (images ``[N, 8, 8]`` float32, labels int64), in three stratified parts.

    ``train`` trains the models; ``val`` is what the search validates on (it chooses the compression
    rate); ``test`` is seen only by the final report, so the accuracies it reports were not selected for.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_data(seed: int) -> Digits:
    """The same three parts for a given ``seed`` on every framework and every process."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(images, labels, test_size=TEST_SHARE, random_state=seed, stratify=labels)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=VALIDATION_SHARE / (1 - TEST_SHARE), random_state=seed, stratify=y_rest
    )
    return Digits(x_train, y_train, x_val, y_val, x_test, y_test)
