import pytest

from conftest import SAMPLE_PAGES
from i2h.tokenizer import load_tokenizer, normalize_css, normalize_html, save_tokenizer, train_tokenizer


def test_normalize_collapses_whitespace_and_quotes():
    out = normalize_html(SAMPLE_PAGES[0])
    assert out.startswith("<!DOCTYPE html><html><head><title>Acme</title><style>body{margin:0;font-family:sans-serif}")
    assert '<nav class="flex justify-between"><a href="#">Home</a> <a href="#">Pricing</a></nav>' in out
    assert "<p>Ship your product in days, not months.</p>" in out
    assert '<button class="btn">Get started</button>' in out
    assert "comment" not in out
    assert "<pre>  keep   this  </pre>" in out  # whitespace inside <pre> is significant


def test_normalize_is_idempotent_and_keeps_entities_safe():
    for page in SAMPLE_PAGES:
        once = normalize_html(page)
        assert normalize_html(once) == once
    assert "&copy;" not in normalize_html(SAMPLE_PAGES[1])  # char refs become characters ...
    assert "© 2024 Acme &amp; Co" in normalize_html(SAMPLE_PAGES[1])  # ... and & stays escaped


def test_normalize_css_keeps_selector_spaces():
    assert normalize_css("a :hover { color : red ; }") == "a :hover{color:red}"
    assert normalize_css("h1,  h2 > p {margin: 0 auto}") == "h1,h2>p{margin:0 auto}"


def test_tokenizer_round_trip_is_exact(tiny_tokenizer):
    for page in SAMPLE_PAGES:
        norm = normalize_html(page)
        ids = tiny_tokenizer(norm).input_ids
        assert ids[-1] == tiny_tokenizer.eos_token_id
        assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == norm
    # text the tokenizer never saw still round-trips (byte-level)
    odd = "<p>ünïcödé ✓ 中文</p>"
    assert tiny_tokenizer.decode(tiny_tokenizer(odd).input_ids, skip_special_tokens=True) == odd


def test_special_token_ids_follow_bart_order(tiny_tokenizer):
    assert [tiny_tokenizer.bos_token_id, tiny_tokenizer.pad_token_id, tiny_tokenizer.eos_token_id,
            tiny_tokenizer.unk_token_id] == [0, 1, 2, 3]


def test_save_and_load(tmp_path, tiny_tokenizer):
    save_tokenizer(tiny_tokenizer, tmp_path / "tok")
    again = load_tokenizer(tmp_path / "tok")
    page = normalize_html(SAMPLE_PAGES[1])
    assert again(page).input_ids == tiny_tokenizer(page).input_ids
    with pytest.raises(FileNotFoundError, match="no tokenizer"):
        load_tokenizer(tmp_path)


def test_normalisation_shortens_real_pages(shared_data):
    pages = sorted((shared_data / "iwbench").glob("*.html"))[:10]
    if not pages:
        pytest.skip("../shared/data/iwbench not present")
    texts = [p.read_text() for p in pages]
    tok = train_tokenizer(texts, vocab_size=1000, normalize=False)
    raw = sum(len(tok(t).input_ids) for t in texts)
    norm = sum(len(tok(normalize_html(t)).input_ids) for t in texts)
    assert norm < raw
