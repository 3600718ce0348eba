"""tf.distribute: a compressed model trained by accuracy_aware_fit under MirroredStrategy on 2 logical CPUs.

Logical devices must be configured before TensorFlow runs any operation, so this runs in a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    import aac.tf.plugin
    from aac.core import Registry, create_compressed_model, get_plugin_manager
    from aac.tf import accuracy_aware_fit
    from aac.tf.backend import TFBackend, broadcast_with
    from aac.tf.testing import TFToyPlugin, compile_classifier, functional_model, make_data

    keras.utils.set_random_seed(0)
    registry = Registry(get_plugin_manager(autoload=False, plugins=[aac.tf.plugin, TFToyPlugin()]))
    x, y = make_data(384, noise=1.0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    config = {"compression": {"algorithm": "tf_toy_pruning", "params": {"target": 0.25, "steps": 2}},
              "accuracy_aware_training": {"mode": "early_exit", "params": {
                  "maximal_absolute_accuracy_degradation": 0.2, "maximal_total_epochs": 3}}}
    with strategy.scope():
        model = compile_classifier(functional_model())
    model.fit(x[:256], y[:256], epochs=3, batch_size=32, verbose=0)
    accuracy = model.evaluate(x[256:], y[256:], return_dict=True, verbose=0)["accuracy"]
    with strategy.scope():
        controller, model = create_compressed_model(model, config, registry=registry)
    _, mask, _ = controller.masks["fc1"]
    model, statistics = accuracy_aware_fit(model, controller, config, (x[:256], y[:256]), (x[256:], y[256:]),
                                           uncompressed_model_accuracy=accuracy, batch_size=32, log_dir=sys.argv[1],
                                           registry=registry, verbose=False)
    zero = np.where(mask.numpy() == 0)[0]
    hidden = keras.Model(model.inputs[0], model.get_layer("fc1").output)(x[:8]).numpy()
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "mask_type": type(mask.mask.value).__name__,
        "optimizer_distributed": type(model.optimizer.iterations.value).__name__,
        "rate": statistics.compression_rate,
        "feasible": statistics.feasible,
        "masked_output": float(np.abs(hidden[:, zero]).max()) if zero.size else -1.0,
        "rank": [TFBackend().rank(), TFBackend().world_size()],
        "broadcast": broadcast_with(strategy, {"log_dir": "runs/x", "metric": 0.5}),
    }))
""")


def test_accuracy_aware_fit_under_mirrored_strategy(tmp_path: Path) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["mask_type"] == "MirroredVariable" and report["optimizer_distributed"] == "MirroredVariable"
    assert report["feasible"] and report["rate"] == 0.25
    assert report["masked_output"] == 0.0  # masked channels output exactly relu(0 + masked bias) = 0 on every replica
    assert report["rank"] == [0, 1]  # one process drives both replicas
    assert report["broadcast"] == {"log_dir": "runs/x", "metric": 0.5}  # the collective path, rank 0's value


WORKER = textwrap.dedent("""
    import json
    import tensorflow as tf
    from aac.tf.backend import TFBackend
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    backend = TFBackend()
    with strategy.scope():
        rank, world = backend.rank(), backend.world_size()
        value = backend.broadcast({"log_dir": f"runs/from_rank_{rank}", "metric": 0.25 + rank})
        backend.barrier()
    print(json.dumps({"rank": rank, "world": world, "value": value}))
""")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_rank_broadcast_and_barrier_across_two_worker_processes() -> None:
    """MultiWorkerMirroredStrategy with two local workers: every worker gets rank 0's value."""
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        env = {**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0"}
        processes.append(
            subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(r["rank"] for r in reports) == [0, 1] and {r["world"] for r in reports} == {2}
    assert all(r["value"] == {"log_dir": "runs/from_rank_0", "metric": 0.25} for r in reports)
