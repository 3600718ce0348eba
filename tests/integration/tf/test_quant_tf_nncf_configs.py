"""Every NNCF 2.17 TensorFlow config that uses quantization (examples/tensorflow/**/configs, tests/tensorflow/**) loads
unchanged and builds on a small Keras model; skipped without an NNCF 2.17 tree (see test_quant_nncf_configs.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import pytest

from aac.core import create_compressed_model, load_config

NNCF = Path(os.environ.get("AAC_NNCF_CONFIGS", "/work/nncf-2.17"))
#: models whose configs name their layers (ignored_scopes): a stand-in would have to rebuild them
NEEDS_ARCHITECTURE = {"MaskRCNN": "its ignored_scopes name layers of NNCF's Mask R-CNN ('gt_boxes', 'multilevel_propose_rois')"}


def _uses_quantization(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return False
    sections = data.get("compression", []) if isinstance(data, dict) else []
    sections = [sections] if isinstance(sections, dict) else sections
    return any(isinstance(s, dict) and s.get("algorithm") == "quantization" for s in sections)


CONFIGS = sorted(
    p
    for root in (NNCF / "examples" / "tensorflow", NNCF / "tests" / "tensorflow")
    if root.is_dir()
    for p in root.rglob("*.json")
    if _uses_quantization(p)
)


def small_model(shape: list[int]) -> object:
    x = keras.Input(tuple(shape[1:]))
    y = keras.layers.Conv2D(4, 3, strides=4, name="conv1")(x)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.ReLU()(y)
    y = keras.layers.Conv2D(4, 3, strides=2, name="conv2")(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    return keras.Model(x, keras.layers.Dense(10, name="fc")(y))


@pytest.mark.skipif(not CONFIGS, reason=f"no NNCF 2.17 tree at {NNCF} (set AAC_NNCF_CONFIGS)")
@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(NNCF)) for p in CONFIGS])
def test_config_loads_and_builds(path: Path) -> None:
    config = load_config(path)
    if config.get("model") in NEEDS_ARCHITECTURE:
        pytest.skip(NEEDS_ARCHITECTURE[config["model"]])
    controller, _ = create_compressed_model(small_model(config.input_shapes[0]), config)
    assert controller.statistics()["quantization"].scalars["weight_quantizers"] > 0
