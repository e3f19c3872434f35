"""The one inference path: Predictor loads once and turns screenshots into repaired HTML documents."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from .config import BACKENDS, INFERENCE_FILE
from .images import ImageError, load_image

# A loop: the output's tail repeats a unit of `period` tokens; it is cut when the repeated span is at
# least LOOP_MIN_SPAN tokens and at least LOOP_MIN_REPEATS copies. HTML repeats legitimately (list items,
# table rows, class lists), so a short repeat is never cut: a loop must dominate a long stretch.
LOOP_MAX_PERIOD = 256
LOOP_MIN_SPAN = 192
LOOP_MIN_REPEATS = 4
LOOP_CHECK_EVERY = 16  # tokens between checks while decoding


@dataclass
class Prediction:
    html: str  # a well-formed HTML document (repaired)
    tokens: int  # new tokens generated
    truncated: bool  # hit the token limit without EOS: the page may be incomplete
    loop_cut: bool  # a repetition loop was detected and its tail removed
    seconds: float
    raw: str = field(default="", repr=False)  # the decoded text before loop cutting and repair
    # Text grounding (i2h.ground): its GroundResult when `ground` was given; `.source_html` is the model's
    # own page, so evaluation can score the model's reading and the grounding separately.
    grounding: object = field(default=None, repr=False)


def find_loop(ids: Sequence[int], max_period: int = LOOP_MAX_PERIOD, min_span: int = LOOP_MIN_SPAN,
              min_repeats: int = LOOP_MIN_REPEATS) -> int | None:
    """If the sequence ends in a repetition loop, return where to cut (keeping one copy of the unit).

    For each period p the tail is periodic over the longest run with ids[i] == ids[i - p] at its end.
    Returns None when no loop."""
    a = np.asarray(ids)
    n = len(a)
    best = None
    for p in range(1, min(max_period, n // 2) + 1):
        eq = a[p:] == a[:-p]  # eq[i] <=> a[i+p] == a[i]
        if not eq[-1]:
            continue
        mismatch = np.flatnonzero(~eq)
        run = len(eq) - (mismatch[-1] + 1 if len(mismatch) else 0)  # matching positions at the tail
        span = run + p  # tokens covered by the periodic tail
        if span >= min_span and span // p >= min_repeats:
            start = n - span
            cut = start + p  # keep the first copy of the repeated unit
            if best is None or cut < best:
                best = cut
    return best


def find_text_loop(text: str, max_period: int = 512, min_span: int = 500, min_repeats: int = 10) -> int | None:
    """The same rule on characters (Design2Code cuts runs of identical 50-character chunks): catches
    loops whose tokenisation drifts while the text repeats exactly. Returns where to cut, or None."""
    if len(text) < min_span:
        return None
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    return find_loop(codes, max_period=max_period, min_span=min_span, min_repeats=min_repeats)


TAILWIND_URL = "https://cdn.jsdelivr.net/npm/tailwindcss@2.2.19/dist/tailwind.min.css"


def repair_html(text: str) -> str:
    """Parse with the HTML5 algorithm (as browsers do) and serialise: always a well-formed document.

    A stylesheet link that names Tailwind is pointed at Tailwind 2.2.19 (WebSight v0.2's convention, the
    only version our pages use): a model that garbles the URL would otherwise lose all styling."""
    import html5lib
    from html5lib import serializer

    tree = html5lib.parse(text, treebuilder="etree", namespaceHTMLElements=False)
    for link in tree.iter("link"):
        if "tailwind" in (link.get("href") or "").lower() and "stylesheet" in (link.get("rel") or "stylesheet"):
            link.set("href", TAILWIND_URL)
    walker = html5lib.getTreeWalker("etree")
    ser = serializer.HTMLSerializer(
        quote_attr_values="always", omit_optional_tags=False, minimize_boolean_attributes=False,
        use_trailing_solidus=False, escape_lt_in_attrs=True, resolve_entities=False,
    )
    body = ser.render(walker(tree))
    return "<!DOCTYPE html>" + body


class _LoopStop:
    """transformers StoppingCriteria: stop a sequence once its tail is a repetition loop."""

    def __init__(self, prompt_len: int):
        self.prompt_len = prompt_len
        self.step = 0

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        self.step += 1
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        if self.step % LOOP_CHECK_EVERY:
            return done
        rows = input_ids[:, self.prompt_len :].tolist()
        for i, row in enumerate(rows):
            done[i] = find_loop(row) is not None
        return done


class Predictor:
    """Load a model once; predict(images) -> list of HTML documents."""

    def __init__(self, bundle, device: str | torch.device = "cpu", backend: str = "auto",
                 model_dir: str | Path | None = None, log=None):
        """`backend` (see BACKENDS): "auto" picks the fastest that gives Hugging Face generate's exact greedy
        tokens: the model directory's own choice (inference.json), else ONNX Runtime on the CPU (exported
        once into the cache, needs `model_dir`), else the lean PyTorch loop, else HF generate. "onnx" /
        "onnx-int8" ONNX Runtime (int8: the decoder's weights in int8 blocks), "torch" the lean loop of i2h.fast,
        "hf" Hugging Face generate. Beam search and sampling always run in HF generate."""
        self.bundle = bundle
        self.device = torch.device(device)
        self.model = bundle.model.to(self.device).eval()
        self.tokenizer = bundle.tokenizer
        self.processor = bundle.processor
        self.config = bundle.model.config
        self.generation = dict(bundle.generation)
        # BART's configs force EOS at the length limit, which would pass off a cut page as whole.
        self.model.text.generation_config.forced_eos_token_id = None
        self._log = log or (lambda msg: None)
        self._init_backend(backend, model_dir)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, device: str = "cpu", backend: str = "auto",
                        log=None) -> "Predictor":
        from .checkpoint import load, resolve

        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda: no CUDA device is available here; use --device cpu")
        where = resolve(name_or_path)
        return cls(load(where, device=device), device=device, backend=backend,
                   model_dir=where if isinstance(where, Path) else None, log=log)

    # ---- decoding backends (i2h.fast, i2h.export) ----
    def _auto_backend(self, model_dir) -> str:
        from . import fast

        if fast.model_reason(self.model):
            return "hf"
        if model_dir is not None:
            try:
                choice = json.loads((Path(model_dir) / INFERENCE_FILE).read_text()).get("backend")
            except (OSError, ValueError, AttributeError):
                choice = None
            if choice in BACKENDS and choice != "auto":
                return choice
        quantized = getattr(self.model, "optimized", {}).get("quantization")
        if model_dir is None or self.device.type != "cpu" or quantized:
            return "torch"
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "torch"
        return "onnx"

    def _init_backend(self, backend: str, model_dir) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r}: choose {', '.join(BACKENDS)}")
        self.requested, self._onnx = backend, None
        if backend == "auto":
            backend = self._auto_backend(model_dir)
        if backend.startswith("onnx"):
            try:
                self._onnx = self._open_onnx(backend, model_dir)
            except (ImportError, ValueError, OSError, RuntimeError) as e:
                if self.requested != "auto":
                    raise ValueError(str(e)) from None
                self._log(f"ONNX Runtime backend unavailable ({e}); decoding with the PyTorch loop")
                backend = "torch"
        self.backend = backend

    def _open_onnx(self, backend: str, model_dir):
        from .export import OnnxDecoder, onnx_for

        if model_dir is None:
            raise ValueError(f"the {backend} backend needs a model directory (a preset has no weights to export)")
        if self.device.type != "cpu":
            raise ValueError(f"the {backend} backend runs on the CPU; use --device cpu")
        if getattr(self.model, "optimized", {}).get("quantization"):
            raise ValueError(f"the {backend} backend exports the fp32 model; {model_dir} is already quantized "
                             "(use --backend torch)")
        where = onnx_for(self.bundle, model_dir, int8=backend == "onnx-int8", log=self._log)
        return OnnxDecoder(self.model, where, threads=torch.get_num_threads())

    def _generate(self, pixels: torch.Tensor, stops, kw: dict, streamer=None) -> torch.Tensor:
        """Token ids (B, T): ONNX Runtime, the lean greedy loop (same tokens as HF), or HF generate."""
        from . import fast

        why_not = fast.supports(self.model, **kw)
        if self._onnx is not None:
            if why_not is None:
                return self._onnx.generate(pixels, stopping_criteria=stops, streamer=streamer, **kw)
            if self.requested != "auto":
                raise ValueError(f"the {self.backend} backend decodes greedily only: {why_not}")
        if self.backend != "hf" and why_not is None:
            return fast.greedy_generate(self.model, pixels, stopping_criteria=stops, streamer=streamer, **kw)
        return self.model.generate(pixels, stopping_criteria=stops, streamer=streamer, **kw)

    def _gen_kwargs(self, max_new_tokens, num_beams, do_sample, temperature, top_p, seed):
        kw = dict(self.generation)
        if max_new_tokens is not None:
            kw["max_new_tokens"] = int(max_new_tokens)
        # Learned positions (BART) cap the sequence: the start token takes one, so at most positions - 1 new.
        positions = getattr(self.model.text.config, "max_position_embeddings", None)
        if positions and self.config.text.family == "bart":
            kw["max_new_tokens"] = min(kw["max_new_tokens"], positions - 1)
        if num_beams is not None:
            kw["num_beams"] = int(num_beams)
        kw["do_sample"] = bool(do_sample)
        if do_sample:
            kw.update(temperature=temperature, top_p=top_p)
            if seed is not None:
                torch.manual_seed(seed)
        return kw

    @torch.inference_mode()
    def predict_full(self, images, max_new_tokens: int | None = None, num_beams: int | None = None,
                     do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0,
                     seed: int | None = None, batch_size: int = 8, loop_guard: bool = True,
                     ground=None) -> list[Prediction]:
        """Screenshots (paths, bytes or PIL images) -> Predictions. Raises ImageError for a bad image;
        use `predict_paths` to get per-input errors in a batch instead. `ground`: a callable (html, image)
        -> GroundResult, e.g. i2h.ground.make_grounder(), applied to each page after generation."""
        pil = [load_image(img) for img in images]
        out: list[Prediction] = []
        for start in range(0, len(pil), batch_size):
            chunk = pil[start : start + batch_size]
            if ground is not None and hasattr(ground, "prefetch"):
                ground.prefetch(chunk)  # OCR reads these screenshots while the model decodes them
            t0 = time.perf_counter()
            pixels = self.processor.batch(chunk)
            preds = self.predict_tensors(pixels, max_new_tokens, num_beams, do_sample, temperature, top_p, seed, loop_guard)
            extra = (time.perf_counter() - t0) / len(preds) - preds[0].seconds  # preprocessing, per image
            for p in preds:
                p.seconds += extra
            if ground is not None:
                _apply_grounding(preds, chunk, ground)
            out.extend(preds)
        return out

    @torch.inference_mode()
    def predict_tensors(self, pixels: torch.Tensor, max_new_tokens: int | None = None, num_beams: int | None = None,
                        do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0,
                        seed: int | None = None, loop_guard: bool = True) -> list[Prediction]:
        """Preprocessed images (B, 3, H, W) -> Predictions: the step every other entry point shares."""
        from transformers import StoppingCriteriaList

        kw = self._gen_kwargs(max_new_tokens, num_beams, do_sample, temperature, top_p, seed)
        t0 = time.perf_counter()
        stops = StoppingCriteriaList([_LoopStop(prompt_len=1)] if loop_guard else [])
        was_training = self.model.training
        self.model.eval()
        seqs = self._generate(pixels.to(self.device), stops, kw)
        self.model.train(was_training)
        seconds = (time.perf_counter() - t0) / len(pixels)
        return [self._finish(row, kw, seconds, loop_guard) for row in seqs.tolist()]

    def stream(self, image, max_new_tokens: int | None = None, num_beams: int | None = None,
               do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None,
               loop_guard: bool = True) -> Iterator[str | Prediction]:
        """One screenshot: yields decoded text pieces as they are generated, then the final Prediction."""
        import threading

        from transformers import StoppingCriteriaList, TextIteratorStreamer

        pil = load_image(image)
        kw = self._gen_kwargs(max_new_tokens, 1 if num_beams is None else num_beams, do_sample, temperature, top_p, seed)
        if kw["num_beams"] != 1:
            raise ValueError("streaming decodes one hypothesis: use num_beams=1")
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=False, skip_special_tokens=True,
                                        clean_up_tokenization_spaces=False)
        pixels = self.processor.batch([pil]).to(self.device)
        stops = StoppingCriteriaList([_LoopStop(prompt_len=1)] if loop_guard else [])
        result: dict = {}

        def work():
            t0 = time.perf_counter()
            try:
                with torch.inference_mode():
                    result["seqs"] = self._generate(pixels, stops, kw, streamer=streamer)
            except BaseException as e:  # re-raised in the caller's thread
                result["error"] = e
                streamer.end()
            result["seconds"] = time.perf_counter() - t0

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        for piece in streamer:
            if piece:
                yield piece
        thread.join()
        if "error" in result:
            raise result["error"]
        yield self._finish(result["seqs"][0].tolist(), kw, result["seconds"], loop_guard)

    def _finish(self, row: list[int], kw: dict, seconds: float, loop_guard: bool) -> Prediction:
        tok = self.tokenizer
        eos, pad = kw.get("eos_token_id"), kw.get("pad_token_id")
        start = kw.get("decoder_start_token_id")
        ids = row[1:] if row and row[0] == start else row  # drop the decoder start token
        if kw.get("forced_bos_token_id") is not None and ids and ids[0] == kw["forced_bos_token_id"]:
            ids = ids[1:]
        hit_eos = eos in ids
        if hit_eos:
            ids = ids[: ids.index(eos)]
        while ids and ids[-1] == pad:
            ids = ids[:-1]
        n_tokens = len(ids) + (1 if hit_eos else 0)
        loop_cut = False
        if loop_guard and not hit_eos:
            cut = find_loop(ids)
            if cut is not None:
                ids, loop_cut = ids[:cut], True
        text = tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        if loop_guard and not hit_eos and not loop_cut:
            cut = find_text_loop(text)
            if cut is not None:
                text, loop_cut = text[:cut], True
        truncated = not hit_eos and not loop_cut
        return Prediction(html=repair_html(text), tokens=n_tokens, truncated=truncated,
                          loop_cut=loop_cut, seconds=seconds, raw=text)

    def predict(self, images, **kwargs) -> list[str]:
        """Screenshots -> HTML documents (always parse and render)."""
        return [p.html for p in self.predict_full(images, **kwargs)]

    def predict_paths(self, paths: Sequence, **kwargs) -> list[Prediction | ImageError]:
        """Like predict_full, but a bad input gives its ImageError in its place and the rest still run."""
        results: list = [None] * len(paths)
        good, good_idx = [], []
        for i, p in enumerate(paths):
            try:
                good.append(load_image(p))
                good_idx.append(i)
            except ImageError as e:
                results[i] = e
        for i, pred in zip(good_idx, self.predict_full(good, **kwargs) if good else []):
            results[i] = pred
        return results


def _apply_grounding(preds: list[Prediction], images: list, ground) -> None:
    """Text grounding hook (i2h.ground): each page's text replaced by what OCR reads in its screenshot.
    A page whose grounding fails keeps the model's HTML; the reason is in `.grounding.error`."""
    for p, img in zip(preds, images):
        g = ground(p.html, img)
        p.grounding = g
        if g.error is None:
            p.html = g.html
            p.seconds += g.seconds


def load(name_or_path: str | Path = None, device: str = "cpu", backend: str = "auto", log=None) -> Predictor:
    """`i2h.load(path_or_id)`: a ready Predictor. With no argument, the bundled default model."""
    if name_or_path is None:
        from .checkpoint import default_model_dir

        name_or_path = default_model_dir()
    return Predictor.from_pretrained(name_or_path, device=device, backend=backend, log=log)
