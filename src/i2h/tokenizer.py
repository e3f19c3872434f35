"""HTML normalisation (shorter targets, same rendering) and the byte-level BPE tokenizer for HTML."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable, Iterator

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]  # BART's order: ids 0, 1, 2, 3
ASSET_TOKENIZER = Path(__file__).parent / "assets" / "tokenizer"

# Elements that start a new block box: whitespace next to their tags never renders.
BLOCK_TAGS = frozenset(
    """html head body title meta link style script base noscript template
    address article aside blockquote details dialog dd div dl dt fieldset figcaption figure footer
    form h1 h2 h3 h4 h5 h6 header hgroup hr li main nav ol p pre section summary table tbody thead
    tfoot tr td th caption colgroup col ul option optgroup select iframe video audio canvas svg
    br""".split()
)
VOID_TAGS = frozenset("area base br col embed hr img input link meta param source track wbr".split())
RAW_TAGS = frozenset(["script", "style"])  # content is not HTML
VERBATIM_TAGS = frozenset(["pre", "textarea"])  # whitespace inside is significant

_WS = re.compile(r"[ \t\n\r\f]+")
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_CSS_PUNCT = re.compile(r"\s*([{};,>])\s*")


def normalize_css(css: str) -> str:
    """Collapse insignificant whitespace in a style sheet; drop comments and empty trailing `;`."""
    css = _CSS_COMMENT.sub("", css)
    css = _WS.sub(" ", css)
    css = _CSS_PUNCT.sub(r"\1", css)
    css = re.sub(r"\s*:\s*(?=[^{};]*[;}])", ":", css)  # `color : red;` -> `color:red;` (declarations only)
    css = css.replace(";}", "}")
    return css.strip()


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;")


class _Normalizer(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []  # pieces; text pieces are held as ("text", s) until flushed
        self.pending_text: list[str] = []
        self.stack: list[str] = []
        self.last_tag_block = True  # was the previous emitted token a block-level tag boundary?

    # Text between tags is collected and flushed at the next tag, when we know what follows it.
    def _flush_text(self, next_is_block: bool):
        if not self.pending_text:
            return
        text = "".join(self.pending_text)
        self.pending_text = []
        if any(t in VERBATIM_TAGS for t in self.stack):
            self.out.append(_escape_text(text))
            self.last_tag_block = False
            return
        text = _WS.sub(" ", text)
        if self.last_tag_block:
            text = text.lstrip(" ")
        if next_is_block:
            text = text.rstrip(" ")
        if text:
            self.out.append(_escape_text(text))
            self.last_tag_block = False

    def _attrs(self, attrs) -> str:
        parts = []
        for name, value in attrs:
            if value is None:
                parts.append(f" {name}")
                continue
            if name in ("class", "style"):
                value = _WS.sub(" ", value).strip()
                if name == "style":
                    value = normalize_css(value)
            parts.append(f' {name}="{_escape_attr(value)}"')
        return "".join(parts)

    def handle_starttag(self, tag, attrs):
        block = tag in BLOCK_TAGS
        self._flush_text(block)
        self.out.append(f"<{tag}{self._attrs(attrs)}>")
        self.last_tag_block = block
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        block = tag in BLOCK_TAGS
        self._flush_text(block)
        self.out.append(f"<{tag}{self._attrs(attrs)}>")  # HTML, not XHTML: no self-closing slash
        self.last_tag_block = block
        if tag not in VOID_TAGS:
            self.out.append(f"</{tag}>")

    def handle_endtag(self, tag):
        block = tag in BLOCK_TAGS
        self._flush_text(block)
        if tag in VOID_TAGS:
            return
        self.out.append(f"</{tag}>")
        self.last_tag_block = block
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass

    def handle_data(self, data):
        if self.stack and self.stack[-1] in RAW_TAGS:
            # html.parser hands raw text over unsplit; it is CSS or JS, never markup.
            if self.stack[-1] == "style":
                self.out.append(normalize_css(data))
            else:
                self.out.append(data.strip())
            return
        self.pending_text.append(data)

    def handle_decl(self, decl):
        self._flush_text(True)
        self.out.append("<!DOCTYPE html>" if decl.lower().startswith("doctype") else f"<!{decl}>")
        self.last_tag_block = True

    def handle_comment(self, data):
        pass  # comments never render

    def handle_pi(self, data):
        pass

    def close(self):
        super().close()
        self._flush_text(True)


def normalize_html(html: str) -> str:
    """Rewrite HTML in the model's canonical form without changing how it renders.

    Whitespace that cannot render is removed (between block tags, runs collapsed to one space), attribute
    values are double-quoted, comments are dropped and CSS is minified. Whitespace inside <pre> and
    <textarea> is kept. Applying it twice gives the same string."""
    parser = _Normalizer()
    parser.feed(html)
    parser.close()
    return "".join(parser.out)


# ---------------------------------------------------------------------------------------------
# Tokenizer


def _wrap(tok):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
    )


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8192, normalize: bool = True):
    """Train a byte-level BPE on HTML pages; returns a transformers PreTrainedTokenizerFast.

    Encoding appends </s>, so `tokenizer(html).input_ids` are ready-made training labels."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = (normalize_html(t) if normalize else t for t in texts)
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))]
    )
    return _wrap(tok)


def load_tokenizer(path: str | Path):
    """Load a tokenizer saved by `save_pretrained` (a directory) or a bare tokenizer.json."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = Path(path)
    if path.is_file():
        from tokenizers import Tokenizer

        return _wrap(Tokenizer.from_file(str(path)))
    if not (path / "tokenizer.json").exists() and not (path / "tokenizer_config.json").exists():
        raise FileNotFoundError(f"{path}: no tokenizer here (expected tokenizer.json); train one with `i2h tokenizer train`")
    if (path / "tokenizer.json").exists():
        # Not AutoTokenizer: a model directory's config.json is ours, not a transformers model's.
        return PreTrainedTokenizerFast.from_pretrained(str(path))
    return AutoTokenizer.from_pretrained(str(path))


def default_tokenizer():
    """The bundled HTML tokenizer, trained on pages from our synthetic generator."""
    return load_tokenizer(ASSET_TOKENIZER)


def iter_html_sources(sources: Iterable[str | Path]) -> Iterator[str]:
    """HTML pages from .html files, folders of them, and Parquet shards (their `text` column)."""
    for src in sources:
        p = Path(src)
        if p.is_dir():
            files = sorted(p.rglob("*.html")) + sorted(p.rglob("*.parquet"))
            if not files:
                raise FileNotFoundError(f"{p}: no .html or .parquet files inside")
            yield from iter_html_sources(files)
        elif p.suffix == ".parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(p).iter_batches(columns=["text"], batch_size=256):
                yield from (t for t in batch.column(0).to_pylist() if t)
        elif p.exists():
            yield p.read_text(encoding="utf-8", errors="replace")
        else:
            raise FileNotFoundError(f"{p}: no such file or folder; give .html files, folders or .parquet shards")


def save_tokenizer(tokenizer, out: str | Path) -> Path:
    """Save atomically: write to a temporary folder beside `out`, then rename."""
    from .checkpoint import atomic_dir

    with atomic_dir(out) as tmp:
        tokenizer.save_pretrained(str(tmp))
    return Path(out)
