"""TorchCompressionAlgorithm: scopes from the section, stripping a copy, and export."""

import numpy as np
import onnxruntime
import pytest
import torch

from aac.core import create_compressed_model
from aac.core.errors import ConfigError
from aac.torch.export import ExportError
from aac.torch.testing.models import ResNet
from aac.torch.transforms import has_transforms


def _build(registry, section=None, **root):
    config = {"input_info": {"sample_size": [1, 3, 8, 8]}, **root, "compression": {"algorithm": "halve_weights", **(section or {})}}
    controller, model = create_compressed_model(ResNet().eval(), config, registry=registry)
    assert model is controller.model
    return controller


def test_scopes_of_the_section_and_global_lists(registry):
    algo = _build(registry, {"ignored_scopes": ["layers.1"]}, target_scopes=["layers"])
    assert algo.is_selected("layers.0.0.conv1")
    assert not algo.is_selected("layers.1.0.conv1")  # ignored by the section
    assert not algo.is_selected("conv1")  # outside the global target scopes
    with pytest.raises(ConfigError, match=r"\$.compression.target_scopes: 'layer3' matches no module"):
        _build(registry, {"target_scopes": ["layer3"]})


def test_strip_works_on_a_copy(registry):
    algo = _build(registry)
    x = torch.randn(2, 3, 8, 8)
    stripped = algo.strip()
    assert stripped is not algo.model and not has_transforms(stripped) and has_transforms(algo.model)
    torch.testing.assert_close(stripped(x), algo.model(x))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy exporter announces its removal
def test_export_pt_and_onnx(registry, tmp_path):
    algo = _build(registry)
    x = torch.randn(3, 3, 8, 8)
    algo.export_model(tmp_path / "model.pt")
    loaded = torch.load(tmp_path / "model.pt", weights_only=False)
    torch.testing.assert_close(loaded(x), algo.model(x))
    algo.export_model(tmp_path / "model.onnx", dynamo=False)  # the fast legacy exporter; the default is tested in aac-pruning
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    (result,) = session.run(None, {"input0": x.numpy()})
    np.testing.assert_allclose(result, algo.model(x).detach().numpy(), atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.pt"]
    with pytest.raises(ExportError, match="unknown suffix '.tflite'"):
        algo.export_model(tmp_path / "model.tflite")
