"""Every NNCF 2.17 config that uses quantization (examples/torch/**/configs, tests/torch/**) loads unchanged and
builds on a stand-in of its architecture (:mod:`aac.quant.testing_models`).

The configs are NNCF's files, not aac's: the test reads them from an NNCF 2.17 tree named by ``AAC_NNCF_CONFIGS``
(default ``/work/nncf-2.17``, with ``examples/`` and ``tests/`` as NNCF ships them) and is skipped without one.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from torch import nn

from aac.core import create_compressed_model, load_config
from aac.quant import testing_models as models

NNCF = Path(os.environ.get("AAC_NNCF_CONFIGS", "/work/nncf-2.17"))


def _uses_quantization(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return False
    sections = data.get("compression", []) if isinstance(data, dict) else []
    sections = [sections] if isinstance(sections, dict) else sections
    return any(isinstance(s, dict) and s.get("algorithm") == "quantization" for s in sections)


def _configs(framework: str) -> list[Path]:
    roots = [NNCF / "examples" / framework, NNCF / "tests" / framework]
    return sorted(p for root in roots if root.is_dir() for p in root.rglob("*.json") if _uses_quantization(p))


#: the config's "model" -> a stand-in with the names its scopes use
STAND_INS: dict[str, Callable[[], nn.Module]] = {
    "resnet18": lambda: models.ResNet(models.BasicBlock, (2, 2, 2, 2)),
    "resnet34": lambda: models.ResNet(models.BasicBlock, (3, 4, 6, 3)),
    "ResNet34_cifar": lambda: models.ResNet(models.BasicBlock, (3, 4, 6, 3)),
    "resnet50": lambda: models.ResNet(models.Bottleneck, (3, 4, 6, 3), width=2),
    "mobilenet_v2_tv_092": models.MobileNetV2,
    "mobilenet_v2": lambda: models.MobileNetV2(conv_bn=models.Conv2dNormActivation),
    "mobilenet_v2_32x32": models.MobileNetV2For32x32,
    "squeezenet1_1": models.SqueezeNet,
    "inception_v3": models.Inception3,
    "incept_v3_cifar100": models.Inception3,
    "icnet": models.ICNet,
    "RMNetClassifierCifar": models.RMNetClassifierCifar,
}

CONFIGS = _configs("torch")


@pytest.mark.skipif(not CONFIGS, reason=f"no NNCF 2.17 tree at {NNCF} (set AAC_NNCF_CONFIGS)")
@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(NNCF)) for p in CONFIGS])
def test_config_loads_and_builds(path: Path) -> None:
    config = load_config(path)
    model = STAND_INS.get(config.get("model", ""), models.SmallNet)()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        controller, _ = create_compressed_model(model, config)
    assert controller.statistics()["quantization"].scalars["weight_quantizers"] > 0
