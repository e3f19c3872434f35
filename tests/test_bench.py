"""`i2h bench` runs every variant in one process and reports ratios against HF generate measured beside them."""
import json

import pytest


@pytest.mark.slow
def test_bench_every_variant_on_a_tiny_preset(capsys):
    from i2h.cli import main
    from i2h.bench import VARIANTS

    assert main(["bench", "--model", "tiny", "--tokens", "6", "--batch", "1", "2", "--reps", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bandwidth_gb_s"] > 0
    (m,) = result["models"]
    rows = {r["variant"]: r for r in m["rows"]}
    assert set(rows) == set(VARIANTS)
    assert rows["hf"]["x_hf_tok_s_b1"] == pytest.approx(1.0)
    for r in rows.values():
        assert r["tok_s_b1"] > 0 and r["tok_s_b2"] > 0 and r["encoder_ms"] > 0 and r["disk_mb"] > 0
        assert r["bound_tok_s_b1"] > 0 and r["e2e_s_page"] > 0
    # the exact paths decode HF's tokens; int8 weights are counted at a quarter of fp32's bytes
    assert rows["fast"]["same_tokens_as_hf"] and rows["onnx"]["same_tokens_as_hf"]
    assert rows["onnx-int8"]["bytes_per_token_mb"] < 0.5 * rows["onnx"]["bytes_per_token_mb"]


def test_bench_names_a_bad_model(capsys):
    from i2h.cli import main

    assert main(["bench", "--model", "no-such-model"]) == 2
    assert "no-such-model" in capsys.readouterr().err
