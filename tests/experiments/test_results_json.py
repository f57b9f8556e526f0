"""results.json is strict JSON: a margin of devices never written (infinite) is null on disk."""
import json
import math

import pytest

from ferristor.experiments.results import read_json, write_json
from ferristor.nn import HybridConfig, HybridMLP, NetworkSpec
from ferristor.nn.ledger import ledger


def _strict_load(text):
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def test_a_ledger_without_memristor_writes_is_strict_json_and_reads_back_infinite(tmp_path):
    """Python wrote `Infinity` (not JSON: JavaScript's JSON.parse, jq and strict parsers refuse the file)."""
    model = HybridMLP(NetworkSpec(sizes=(4, 3, 2), output_norm=False), config=HybridConfig(mode="hm"), seeds=0)
    rep = ledger(model)  # nothing trained: no device written, every margin infinite
    assert math.isinf(rep[0]["network"]["endurance"]["memristor_margin"])
    data = {"ledger": rep, "x": [1.5, float("nan")], "tuple": (1, 2)}
    path = write_json(tmp_path / "results.json", data)
    on_disk = _strict_load(path.read_text())
    assert on_disk["ledger"][0]["network"]["endurance"]["memristor_margin"] is None and on_disk["x"] == [1.5, None]
    back = read_json(path)
    assert back["ledger"] == json.loads(json.dumps(rep))  # every margin infinite again, the rest as written
    assert back["tuple"] == [1, 2]


def test_an_older_file_with_infinity_still_reads(tmp_path):
    p = tmp_path / "old.json"
    p.write_text('{"endurance": {"fecap_margin": Infinity, "memristor_margin": 12.5}}')
    assert read_json(p) == {"endurance": {"fecap_margin": math.inf, "memristor_margin": 12.5}}


def test_read_errors_are_json_s_own(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text("{")
    with pytest.raises(ValueError):
        read_json(p)
