"""The plugin registers the torch backend without importing torch."""

import subprocess
import sys

import torch

from aac.core.plugins import default_registry
from aac.torch.backend import TorchBackend
from aac.torch.plugin import claims


def test_backend_is_registered_and_claims_modules_only():
    spec = default_registry().backend_for(torch.nn.Linear(2, 2))
    assert spec.name == "torch" and spec.package == "aac-torch"
    assert isinstance(spec.create(), TorchBackend)
    assert claims(torch.nn.Conv2d(1, 1, 1))
    assert not claims(object())
    assert not claims({"state_dict": 1})


def test_importing_the_plugin_and_package_does_not_import_torch():
    code = (
        "import sys, aac.torch, aac.torch.plugin\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert not aac.torch.plugin.claims(object())\n"
        "print(aac.torch.__version__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0.1.0"


def test_lazy_exports_resolve():
    import aac.torch

    assert aac.torch.TorchBackend is TorchBackend
    assert set(aac.torch.__all__) >= {"TorchCompressionAlgorithm", "Mask", "trace_model", "ScopeIndex"}
