"""The scripts in examples/ run as a user runs them (a subprocess, tiny settings) and print their results."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, *args: str, timeout: float = 300) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FERRISTOR_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args, "--no-progress"], capture_output=True,
                          text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def data_args(data_dir) -> list[str]:
    return ["--data-dir", data_dir] if data_dir else []


def percent(text: str, label: str) -> float:
    m = re.search(label + r" ([0-9.]+) %", text)
    assert m, f"no '{label} … %' in:\n{text}"
    return float(m.group(1))


def assert_ledger(out: str, layers: list[str], transfers: int) -> None:
    table = out[out.index("ledger (one chip):"):].splitlines()[1:]
    assert table[0].split()[:3] == ["layer", "synapses", "transfers"]
    rows = {line.split()[0]: line.split() for line in table[1:-1]}
    assert list(rows) == layers + ["network"]
    assert all(r[2] == f"{transfers:,}" for r in rows.values())
    assert table[-1].startswith("initial programming (apart)")


def test_own_training_loop(mnist_data_dir):
    out = run_example("own_training_loop.py", *data_args(mnist_data_dir), "--train-limit", "300", "--test-limit", "500",
                      "--epochs", "2")
    assert "epoch 1: test accuracy" in out and "epoch 2: test accuracy" in out
    assert 20 < percent(out, "300 training samples × 2 epoch\\(s\\), 500 test samples: test accuracy") <= 100
    assert_ledger(out, ["0", "3", "6"], transfers=6)  # 600 inputs, k = 100


@pytest.mark.slow
def test_convert_lenet(mnist_data_dir, tmp_path):
    summary = tmp_path / "summary.json"
    out = run_example("convert_lenet.py", *data_args(mnist_data_dir), "--dataset", "mnist", "--train-limit", "400",
                      "--test-limit", "200", "--float-epochs", "1", "--epochs", "0.5", "--batch", "4", "--k", "50",
                      "--json", str(summary), "--float-state", str(tmp_path / "float.pt"))
    for label in ("float network after 1 float epoch\\(s\\): test accuracy", "converted, before on-chip training:  test accuracy",
                  "test accuracy", "validation accuracy"):
        assert 0 <= percent(out, label) <= 100
    assert "LeNet-5 on mnist (400 training samples, 10% held out; 200 test samples), mode hm-var" in out
    assert_ledger(out, ["1", "4", "8", "10", "12"], transfers=3)  # 45 steps × 4 = 180 inputs, k = 50
    assert summary.exists() and (tmp_path / "float.pt").exists()
    again = run_example("convert_lenet.py", *data_args(mnist_data_dir), "--dataset", "mnist", "--train-limit", "400",
                        "--test-limit", "200", "--float-epochs", "1", "--epochs", "0.5", "--batch", "4", "--k", "50",
                        "--float-state", str(tmp_path / "float.pt"), "--fit-quantile", "0.99")  # the float network, reused
    float_acc = "float network after 1 float epoch\\(s\\): test accuracy"
    assert percent(again, float_acc) == percent(out, float_acc)


@pytest.mark.slow
def test_own_tensors(tmp_path):
    out = run_example("own_tensors.py", "--samples", "200", "--epochs", "2", "--out", str(tmp_path))
    assert re.search(r"dataset two-moons \(fingerprint [0-9a-f]{32}\): 200 training points \(10% held out\), "
                     r"200 test points, 2 classes", out)
    assert 0 <= percent(out, "hm-var, seed 0: test accuracy") <= 100
    assert_ledger(out, ["0", "3"], transfers=3)  # 2 × 180 inputs, k = 100
    assert (tmp_path / "results.json").exists()


@pytest.mark.parametrize("name", ["own_training_loop.py", "convert_lenet.py", "own_tensors.py"])
def test_examples_explain_themselves(name):
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--epochs" in proc.stdout
