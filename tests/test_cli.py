import json
import os
import subprocess
import sys

import html5lib
from PIL import Image

from i2h.cli import main


def test_generate_with_a_corrupt_input(tmp_path, tiny_tokenizer, capsys):
    tok = tmp_path / "tok"
    tiny_tokenizer.save_pretrained(tok)
    model = tmp_path / "M"
    assert main(["model", "create", "--preset", "tiny", "--out", str(model), "--tokenizer", str(tok)]) == 0
    for name, colour in [("a.png", "white"), ("b.png", (20, 40, 200))]:
        Image.new("RGB", (400, 300), colour).save(tmp_path / name)
    good = (tmp_path / "a.png").read_bytes()
    (tmp_path / "c.png").write_bytes(good[: len(good) // 2])
    out = tmp_path / "O"
    capsys.readouterr()
    rc = main(["generate", *(str(tmp_path / n) for n in ["a.png", "b.png", "c.png"]),
               "--model", str(model), "--out", str(out), "--max-new-tokens", "16"])
    err = capsys.readouterr().err
    assert rc != 0
    assert [line for line in err.splitlines() if "error" in line and "c.png" in line]
    for name in ["a.html", "b.html"]:
        html5lib.HTMLParser(strict=True).parse((out / name).read_text())
    assert not (out / "c.html").exists()


def test_model_info_json(capsys):
    assert main(["model", "info", "tiny", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["input_size"] == [128, 128] and info["parameters"]["total"] > 0


def test_user_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    assert main(["model", "create", "--preset", "huge", "--out", str(tmp_path / "x")]) == 2
    assert main(["generate", "x.png", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "huge" in err and "nothing" in err


def test_tokenizer_train_command(tmp_path):
    from conftest import SAMPLE_PAGES

    for i, page in enumerate(SAMPLE_PAGES):
        (tmp_path / f"{i}.html").write_text(page)
    assert main(["tokenizer", "train", str(tmp_path), "--vocab-size", "300", "--out", str(tmp_path / "tok")]) == 0
    assert (tmp_path / "tok" / "tokenizer.json").exists()


def test_console_script_runs(tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    r = subprocess.run([sys.executable, "-m", "i2h", "model", "info", "tiny"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "vision_encoder" in r.stdout
