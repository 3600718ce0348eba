"""The plugin: registration, the shipped schema, and no heavy imports."""

import json
import subprocess
import sys
from importlib import resources

from jsonschema import Draft202012Validator

from aac.core.config import load_config
from aac.core.plugins import default_registry
from aac.pruning.plugin import SCHEMA_FILE, schema


def test_filter_pruning_is_registered_as_adaptive():
    spec = default_registry().algorithm("filter_pruning")
    assert spec.adaptive and spec.package == "aac-pruning" and set(spec.frameworks) == {"torch", "tf"}
    assert spec.schema["$id"] == "https://aac.dev/schemas/filter_pruning.schema.json"


def test_schema_is_valid_draft_2020_12_and_shipped_in_the_package():
    Draft202012Validator.check_schema(schema())
    shipped = resources.files("aac.pruning").joinpath("schemas").joinpath(SCHEMA_FILE).read_text()
    assert json.loads(shipped) == schema()


def test_nncf_config_from_the_documentation_validates():
    config = load_config(
        {
            "accuracy_aware_training": {
                "mode": "adaptive_compression_level",
                "params": {"maximal_relative_accuracy_degradation": 1.0, "initial_training_phase_epochs": 100, "patience_epochs": 30},
            },
            "compression": [
                {
                    "algorithm": "filter_pruning",
                    "pruning_init": 0.05,
                    "params": {
                        "schedule": "exponential",
                        "pruning_target": 0.1,
                        "pruning_steps": 50,
                        "weight_importance": "geometric_median",
                    },
                }
            ],
        }
    )
    assert config.compression_sections()[0].params["filter_importance"] == "geometric_median"


def test_importing_the_plugin_imports_neither_torch_tensorflow_nor_numpy():
    code = (
        "import sys, aac.pruning.plugin as p; p.schema(); "
        "assert not {'torch', 'tensorflow', 'keras', 'numpy'} & set(sys.modules), sys.modules.keys()"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
