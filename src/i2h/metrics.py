"""Pure scoring functions (prediction, reference) -> scores: Design2Code's visual block scores, whole-page similarity, code metrics."""
from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Protocol, Sequence

import numpy as np
from PIL import Image
from scipy.optimize import linear_sum_assignment

# Design2Code's constants (visual_score.py): pairs below this text similarity are not a match; a trial
# merge of two adjacent blocks is kept when it lowers the mean matched cost by more than MERGE_GAIN; the
# final matching adds CONTEXT_BONUS x (two best neighbouring similarities) within CONTEXT_WINDOW cells.
MIN_TEXT_SIMILARITY = 0.5
MERGE_GAIN = 0.05
CONTEXT_BONUS = 0.1
CONTEXT_WINDOW = 1

BLOCK_KEYS = ("block_match", "text", "position", "color")
# The whole-page measures: `visual` (multi-scale SSIM, always) and `clip` (only with CLIP weights).
VISUAL_WIDTHS = (512, 256, 128)


class BoxLike(Protocol):
    """What the renderer's TextBox provides: a text node after layout, CSS px in page coordinates."""

    text: str
    x: float
    y: float
    width: float
    height: float
    color: tuple[int, int, int]


class RenderLike(Protocol):
    """What the renderer's RenderResult provides."""

    image: Image.Image
    boxes: Sequence[BoxLike]
    page_width: int
    page_height: int


@dataclass(frozen=True)
class Block:
    """A text block as Design2Code scores it: box normalised by the page's width and height (0-1)."""

    text: str
    x: float
    y: float
    w: float
    h: float
    color: tuple[float, float, float]

    @property
    def area(self) -> float:
        return self.w * self.h


# --------------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------------

_SPACE = re.compile(r"\s+")


def blocks_from_boxes(boxes: Iterable[BoxLike], page_width: float, page_height: float) -> list[Block]:
    """Normalise text boxes by the page size, drop empty or off-page ones, and merge identical boxes."""
    if page_width <= 0 or page_height <= 0:
        return []
    blocks = []
    for box in boxes:
        text = _SPACE.sub(" ", box.text).strip()
        # Clip to the page: Design2Code's boxes come from screenshot pixels, so text outside the
        # screenshot (scrolled away, beyond a height cap) is not a block there either.
        x0 = min(max(box.x / page_width, 0.0), 1.0)
        y0 = min(max(box.y / page_height, 0.0), 1.0)
        x1 = min(max((box.x + box.width) / page_width, 0.0), 1.0)
        y1 = min(max((box.y + box.height) / page_height, 0.0), 1.0)
        if not text or x1 <= x0 or y1 <= y0:
            continue
        blocks.append(Block(text, x0, y0, x1 - x0, y1 - y0, tuple(float(c) for c in box.color[:3])))
    return merge_identical_boxes(blocks)


def merge_identical_boxes(blocks: Sequence[Block]) -> list[Block]:
    """Join blocks with exactly the same box (text joined by a space, colours averaged), first-seen order."""
    merged: dict[tuple[float, float, float, float], Block] = {}
    for b in blocks:
        key = (b.x, b.y, b.w, b.h)
        if key in merged:
            old = merged[key]
            color = tuple((p + q) / 2 for p, q in zip(old.color, b.color))
            merged[key] = Block(old.text + " " + b.text, b.x, b.y, b.w, b.h, color)
        else:
            merged[key] = b
    return list(merged.values())


def merge_two(a: Block, b: Block) -> Block:
    """Design2Code's merge of adjacent blocks: texts joined by a space, union box, integer mean colour."""
    x0, y0 = min(a.x, b.x), min(a.y, b.y)
    x1, y1 = max(a.x + a.w, b.x + b.w), max(a.y + a.h, b.y + b.h)
    color = tuple(float((int(p) + int(q)) // 2) for p, q in zip(a.color, b.color))
    return Block(a.text + " " + b.text, x0, y0, x1 - x0, y1 - y0, color)


# --------------------------------------------------------------------------------------------------
# Similarities of one pair
# --------------------------------------------------------------------------------------------------


def text_similarity(a: str, b: str) -> float:
    """difflib.SequenceMatcher ratio, as Design2Code (default autojunk kept so scores agree)."""
    return difflib.SequenceMatcher(None, a, b).ratio()


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB 0-255, shape (..., 3) -> CIELAB (D65), shape (..., 3)."""
    from skimage.color import rgb2lab

    arr = np.asarray(rgb, dtype=np.float64).reshape(-1, 1, 3) / 255.0
    return rgb2lab(np.clip(arr, 0.0, 1.0)).reshape(np.shape(rgb))


def color_similarity(rgb1: Sequence[float], rgb2: Sequence[float]) -> float:
    """max(0, 1 - CIEDE2000 / 100) of two sRGB 0-255 colours."""
    return float(color_similarities(np.array([rgb1]), np.array([rgb2]))[0])


def color_similarities(rgb1: np.ndarray, rgb2: np.ndarray) -> np.ndarray:
    """Vectorised color_similarity over rows of two (K, 3) arrays."""
    from skimage.color import deltaE_ciede2000

    if len(rgb1) == 0:
        return np.zeros(0)
    de = deltaE_ciede2000(rgb_to_lab(rgb1), rgb_to_lab(rgb2))
    return np.maximum(0.0, 1.0 - de / 100.0)


def position_similarity(a: Block, b: Block) -> float:
    """1 - max(|dx|, |dy|) of the normalised box centres."""
    dx = abs((a.x + a.w / 2) - (b.x + b.w / 2))
    dy = abs((a.y + a.h / 2) - (b.y + b.h / 2))
    return 1.0 - max(dx, dy)


# --------------------------------------------------------------------------------------------------
# Matching (Hungarian on text similarity, with Design2Code's adjacent-block merges)
# --------------------------------------------------------------------------------------------------


class _SimCache:
    """Memoised text similarities: merge trials recompute the same rows many times."""

    def __init__(self) -> None:
        self._memo: dict[tuple[str, str], float] = {}

    def __call__(self, a: str, b: str) -> float:
        key = (a, b)
        got = self._memo.get(key)
        if got is None:
            got = self._memo[key] = text_similarity(a, b)
        return got

    def matrix(self, A: Sequence[Block], B: Sequence[Block]) -> np.ndarray:
        return np.array([[self(a.text, b.text) for b in B] for a in A], dtype=np.float64).reshape(len(A), len(B))


def context_adjusted_cost(cost: np.ndarray, bonus: float = CONTEXT_BONUS, window: int = CONTEXT_WINDOW) -> np.ndarray:
    """Design2Code's context bonus: a cell with cost below -0.5 gains `bonus` x the sum of the 2*window
    lowest costs among its neighbours within `window` (so runs of matching neighbours stick together)."""
    if window <= 0 or bonus == 0 or cost.size == 0:
        return cost.copy()
    n, m = cost.shape
    padded = np.pad(cost, window, constant_values=np.inf)
    neigh = [padded[window + di:window + di + n, window + dj:window + dj + m]
             for di in range(-window, window + 1) for dj in range(-window, window + 1) if (di, dj) != (0, 0)]
    stack = np.sort(np.stack(neigh), axis=0)[: 2 * window]  # (2w, n, m) lowest neighbour costs
    stack = np.where(np.isinf(stack), 0.0, stack)  # off-matrix neighbours count for nothing
    out = cost + bonus * stack.sum(axis=0)
    return np.where(cost < -0.5, out, cost)


# Weight of the centre distance added to the final matching's cost. Design2Code leaves exact ties (the
# same text several times: "Read more", prices) to the solver's order, which can pair a block with a
# far-away twin and cost an identical page its perfect Position score. Ties are broken by distance;
# 1e-6 x (distance <= 1.5) stays far below any real difference of similarities, so nothing else moves.
TIE_BREAK = 1e-6


def _centre_distance(A: Sequence[Block], B: Sequence[Block]) -> np.ndarray:
    ca = np.array([[a.x + a.w / 2, a.y + a.h / 2] for a in A]).reshape(-1, 1, 2)
    cb = np.array([[b.x + b.w / 2, b.y + b.h / 2] for b in B]).reshape(1, -1, 2)
    return np.sqrt(((ca - cb) ** 2).sum(axis=2))  # (n_pred, n_ref)


def _assign(sim: np.ndarray, bonus: float = 0.0, window: int = 0,
            tie_break: np.ndarray | None = None) -> tuple[list[tuple[int, int]], list[float]]:
    cost = context_adjusted_cost(-sim, bonus, window)
    solve = cost if tie_break is None else cost + TIE_BREAK * tie_break
    rows, cols = linear_sum_assignment(solve)
    return list(zip(rows.tolist(), cols.tolist())), cost[rows, cols].tolist()


def _difference_of_means(current: list[float], updated: list[float]) -> float:
    """Design2Code's merge gain: mean of the costs only in `current` minus mean of those only in
    `updated` (multisets); positive means the trial merge made the matching better."""
    c1, c2 = Counter(current), Counter(updated)
    common = c1 & c2
    u1, u2 = list((c1 - common).elements()), list((c2 - common).elements())
    m1 = sum(u1) / len(u1) if u1 else 0.0
    m2 = sum(u2) / len(u2) if u2 else 0.0
    if m1 - m2 > 0:
        return m1 - m2 if (u1 and u2 and min(u1) > min(u2)) else 0.0
    return m1 - m2


def _merge_by_list(blocks: list[Block], merges: list[tuple[int, int, float]]) -> list[Block]:
    """Apply the best non-overlapping merges (sorted by gain), as Design2Code's merge_blocks_by_list."""
    blocks = list(blocks)
    drop = []
    todo = sorted(merges, key=lambda t: t[2], reverse=True)
    while todo:
        i, j, _ = todo.pop(0)
        blocks[i] = merge_two(blocks[i], blocks[j])
        drop.append(j)
        todo = [t for t in todo if t[0] not in (i, j) and t[1] not in (i, j)]
    dropped = set(drop)
    return [b for k, b in enumerate(blocks) if k not in dropped]


def _merge_side(A: list[Block], B: list[Block], sims: _SimCache, merge_ref: bool) -> list[Block] | None:
    """Try merging each adjacent pair of one side (pred A, or ref B when `merge_ref`); returns that side
    after the helpful merges, or None when no merge helps. The matrix stays (pred x ref) throughout
    because SequenceMatcher's ratio is not symmetric."""
    base = sims.matrix(A, B)  # (n_pred, n_ref)
    _, current = _assign(base)
    side = B if merge_ref else A
    merges = []
    for i in range(len(side) - 1):
        merged = merge_two(side[i], side[i + 1])
        # Only line i changes and line i+1 disappears: patch the matrix instead of rebuilding it.
        if merge_ref:
            trial = np.delete(base, i + 1, axis=1)
            trial[:, i] = [sims(a.text, merged.text) for a in A]
        else:
            trial = np.delete(base, i + 1, axis=0)
            trial[i] = [sims(merged.text, b.text) for b in B]
        _, updated = _assign(trial)
        gain = _difference_of_means(current, updated)
        if gain > MERGE_GAIN:
            merges.append((i, i + 1, gain))
    return _merge_by_list(side, merges) if merges else None


def _pair_twins_by_position(A: Sequence[Block], B: Sequence[Block], pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Among matched pairs with the same (pred text, ref text), re-pair by nearest centres. Swapping
    partners inside such a group leaves every text similarity and the matched sets unchanged, so only
    Position and Color can move: this just stops the context bonus from pairing a repeated text ("Read
    more", a redacted name) with a far-away twin, which cost identical pages their 1.0 in Design2Code."""
    groups: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for i, j in pairs:
        groups.setdefault((A[i].text, B[j].text), []).append((i, j))
    out = []
    for group in groups.values():
        if len(group) == 1:
            out += group
            continue
        rows = [i for i, _ in group]
        cols = [j for _, j in group]
        dist = _centre_distance([A[i] for i in rows], [B[j] for j in cols])
        r, c = linear_sum_assignment(dist)
        out += [(rows[a], cols[b]) for a, b in zip(r.tolist(), c.tolist())]
    return sorted(out)


def match_blocks(pred: Sequence[Block], ref: Sequence[Block],
                 *, try_merges: bool = True) -> tuple[list[Block], list[Block], list[tuple[int, int, float]]]:
    """Design2Code's matching: merge adjacent blocks on either side while that improves the Hungarian
    matching on text similarity, match with the context bonus, drop pairs below the 0.5 similarity cut.
    Returns (pred blocks after merges, ref blocks after merges, [(i, j, text similarity)])."""
    A, B = list(pred), list(ref)
    if not A or not B:
        return A, B, []
    sims = _SimCache()
    while try_merges:
        changed = False
        if len(A) >= 2:
            new_a = _merge_side(A, B, sims, merge_ref=False)
            if new_a is not None:
                A, changed = new_a, True
        if len(B) >= 2:
            new_b = _merge_side(A, B, sims, merge_ref=True)
            if new_b is not None:
                B, changed = new_b, True
        if not changed:
            break
    pairs, _ = _assign(sims.matrix(A, B), CONTEXT_BONUS, CONTEXT_WINDOW, _centre_distance(A, B))
    pairs = _pair_twins_by_position(A, B, pairs)
    out = []
    for i, j in pairs:
        s = sims(A[i].text, B[j].text)
        if s >= MIN_TEXT_SIMILARITY:
            out.append((i, j, s))
    return A, B, out


def block_scores(pred: Sequence[Block], ref: Sequence[Block], *, try_merges: bool = True) -> dict[str, float]:
    """Block-Match, Text, Position and Color (0-1) of one page; all 0 when either side has no blocks
    or nothing matches."""
    zeros = {k: 0.0 for k in BLOCK_KEYS}
    A, B, matches = match_blocks(pred, ref, try_merges=try_merges)
    if not matches:
        return zeros
    matched_i = {i for i, _, _ in matches}
    matched_j = {j for _, j, _ in matches}
    unmatched = sum(a.area for k, a in enumerate(A) if k not in matched_i)
    unmatched += sum(b.area for k, b in enumerate(B) if k not in matched_j)
    matched = sum(A[i].area + B[j].area for i, j, _ in matches)
    colors = color_similarities(np.array([A[i].color for i, _, _ in matches]),
                                np.array([B[j].color for _, j, _ in matches]))
    total = matched + unmatched
    return {
        "block_match": matched / total if total > 0 else 0.0,
        "text": float(np.mean([s for _, _, s in matches])),
        "position": float(np.mean([position_similarity(A[i], B[j]) for i, j, _ in matches])),
        "color": float(np.mean(colors)),
    }


# --------------------------------------------------------------------------------------------------
# Whole-page similarity
# --------------------------------------------------------------------------------------------------


def _gray(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"), dtype=np.float64) / 255.0


def common_canvas(a: Image.Image, b: Image.Image) -> tuple[Image.Image, Image.Image]:
    """Both screenshots on one white canvas of the larger width and height (top-left aligned).
    Padding instead of resizing keeps a too-short or too-tall prediction from being stretched to fit."""
    w, h = max(a.width, b.width), max(a.height, b.height)
    out = []
    for img in (a, b):
        img = img.convert("RGB")
        if img.size != (w, h):
            canvas = Image.new("RGB", (w, h), "white")
            canvas.paste(img, (0, 0))
            img = canvas
        out.append(img)
    return out[0], out[1]


def visual_similarity(pred: Image.Image, ref: Image.Image, widths: Sequence[int] = VISUAL_WIDTHS) -> float:
    """Multi-scale structural similarity (mean SSIM of grey images at a few widths) on one canvas; 1 = identical."""
    from skimage.metrics import structural_similarity

    a, b = common_canvas(pred, ref)
    scores = []
    for w in widths:
        w = min(w, a.width)
        h = max(7, round(a.height * w / a.width))
        ga, gb = _gray(a.resize((w, h), Image.BILINEAR)), _gray(b.resize((w, h), Image.BILINEAR))
        if ga.shape[0] < 7 or ga.shape[1] < 7:
            continue
        scores.append(structural_similarity(ga, gb, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                            use_sample_covariance=False))
    return float(np.mean(scores)) if scores else float(np.array_equal(_gray(a), _gray(b)))


def difference_map(pred: Image.Image, ref: Image.Image, width: int | None = None) -> Image.Image:
    """A heat map of where the two screenshots differ (white = same, dark red = most different)."""
    a, b = common_canvas(pred, ref)
    if width and a.width > width:
        size = (width, max(1, round(a.height * width / a.width)))
        a, b = a.resize(size, Image.BILINEAR), b.resize(size, Image.BILINEAR)
    diff = np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean(axis=2) / 255.0  # (H, W)
    t = np.clip(diff * 2.0, 0.0, 1.0)  # amplify: most real differences are far below full contrast
    # white -> yellow -> red -> dark red
    r = np.where(t < 0.75, 1.0, 1.0 - (t - 0.75) * 2.0)
    g = np.clip(1.0 - t * 1.6, 0.0, 1.0)
    bl = np.clip(1.0 - t * 4.0, 0.0, 1.0)
    rgb = (np.stack([r, g, bl], axis=2) * 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def mask_text(img: Image.Image, blocks: Sequence[Block]) -> Image.Image:
    """Paint each text box with the median colour of its border: a cheap stand-in for Design2Code's
    inpainting (OpenCV is not a dependency), so CLIP compares layout and imagery rather than words."""
    arr = np.array(img.convert("RGB"))
    H, W = arr.shape[:2]
    for b in blocks:
        x0, y0 = int(b.x * W), int(b.y * H)
        x1, y1 = min(W, max(x0 + 1, int(round((b.x + b.w) * W)))), min(H, max(y0 + 1, int(round((b.y + b.h) * H))))
        ring = np.concatenate([arr[max(0, y0 - 1), x0:x1], arr[min(H - 1, y1), x0:x1],
                               arr[y0:y1, max(0, x0 - 1)], arr[y0:y1, min(W - 1, x1)]])
        if len(ring):
            arr[y0:y1, x0:x1] = np.median(ring, axis=0).astype(np.uint8)
    return Image.fromarray(arr)


class ClipScorer:
    """CLIP image-embedding cosine similarity, Design2Code style (text masked, page squashed to a square).
    Needs CLIP weights: a local folder saved with save_pretrained, or a Hub id when the Hub is reachable."""

    def __init__(self, name_or_path: str, device: str = "cpu"):
        import torch
        from transformers import CLIPImageProcessor, CLIPModel

        try:
            self.model = CLIPModel.from_pretrained(name_or_path).eval().to(device)
            self.processor = CLIPImageProcessor.from_pretrained(name_or_path)
        except (OSError, ValueError) as err:
            raise ValueError(f"{name_or_path}: cannot load CLIP weights ({err}); give a folder saved with "
                             "CLIPModel.save_pretrained (with its preprocessor_config.json) or a Hub id "
                             "such as openai/clip-vit-base-patch32 on a machine that can reach the Hub") from err
        self.device = device
        self._torch = torch

    def embed(self, img: Image.Image, blocks: Sequence[Block] = ()) -> np.ndarray:
        img = mask_text(img, blocks) if blocks else img.convert("RGB")
        side = min(img.size)
        img = img.resize((side, side), Image.LANCZOS)  # Design2Code squashes to the shorter side
        inputs = self.processor(images=img, return_tensors="pt").to(self.device)
        with self._torch.no_grad():
            out = self.model.get_image_features(pixel_values=inputs["pixel_values"])
        # transformers 5 returns an output object (embeddings in pooler_output); 4.x a tensor.
        feats = out if isinstance(out, self._torch.Tensor) else out.pooler_output
        feats = feats[0].float().cpu().numpy()
        return feats / (np.linalg.norm(feats) + 1e-12)

    def similarity(self, pred: Image.Image, ref: Image.Image,
                   pred_blocks: Sequence[Block] = (), ref_blocks: Sequence[Block] = ()) -> float:
        return float(np.dot(self.embed(pred, pred_blocks), self.embed(ref, ref_blocks)))


# --------------------------------------------------------------------------------------------------
# Code metrics
# --------------------------------------------------------------------------------------------------

# Tag openers, tag closers, words/numbers/CSS identifiers, then any single other character.
_TOKEN = re.compile(r"</?[A-Za-z][\w:-]*|/?>|[\w#.%-]+|\S")
# Parse errors that every browser shrugs off and that well-formed hand-written pages commonly carry.
# `invalid-codepoint` is a stray control character in text, not a structural fault.
_BENIGN_PARSE_ERRORS = {"expected-doctype-but-got-start-tag", "expected-doctype-but-got-chars",
                        "unknown-doctype", "non-html-root", "invalid-codepoint"}


def html_tokens(html: str) -> list[str]:
    """Split HTML into tag, word and punctuation tokens (whitespace-insensitive)."""
    return _TOKEN.findall(html)


def bleu(pred_html: str, ref_html: str) -> float:
    """Sentence BLEU (0-1) of the HTML token sequences (sacrebleu, exp smoothing, no re-tokenising)."""
    import sacrebleu

    hyp, ref = " ".join(html_tokens(pred_html)), " ".join(html_tokens(ref_html))
    if not ref:
        return 1.0 if not hyp else 0.0
    return sacrebleu.sentence_bleu(hyp, [ref], tokenize="none").score / 100.0


def parse_html(html: str) -> tuple[Any, list[str]]:
    """Parse like a browser (html5lib); returns (ElementTree root, parse error codes)."""
    import html5lib

    parser = html5lib.HTMLParser(tree=html5lib.getTreeBuilder("etree"), namespaceHTMLElements=False)
    root = parser.parse(html)
    return root, [code for _, code, _ in parser.errors]


def _tag(el: Any) -> str | None:
    return el.tag.lower() if isinstance(el.tag, str) else None  # comments have a function as tag


def one_height_subtrees(root: Any) -> Counter:
    """Multiset of (tag, child tags) for every element with element children: TreeBLEU's units."""
    out: Counter = Counter()
    for el in root.iter():
        tag = _tag(el)
        if tag is None:
            continue
        kids = tuple(t for t in (_tag(c) for c in el) if t is not None)
        if kids:
            out[(tag, kids)] += 1
    return out


def tree_bleu(pred_html: str, ref_html: str) -> float:
    """TreeBLEU (DCGen): share of the reference's 1-height subtrees (multiset) found in the prediction."""
    ref = one_height_subtrees(parse_html(ref_html)[0])
    pred = one_height_subtrees(parse_html(pred_html)[0])
    total = sum(ref.values())
    return sum((ref & pred).values()) / total if total else float(not pred)


def is_valid_html(html: str) -> bool:
    """True when a browser parser reports no errors beyond a missing/odd doctype."""
    return bool(html.strip()) and not [e for e in parse_html(html)[1] if e not in _BENIGN_PARSE_ERRORS]


_TRAILING_CLOSERS = re.compile(r"(?:\s*</[A-Za-z][\w:-]*\s*>)+\s*$")


def has_repetition_loop(text: str, min_span: int = 400, min_repeats: int = 4, max_period: int = 600) -> bool:
    """True when the text ends in a run of at least `min_repeats` copies (and `min_span` characters) of one
    unit: the signature of a decoder stuck in a loop. Closing tags appended by HTML repair are ignored."""
    t = _TRAILING_CLOSERS.sub("", text)
    for p in range(1, max_period + 1):
        span = max(min_span, min_repeats * p)
        if span + p > len(t):
            break
        if t[-span:] == t[-span - p:-p]:
            return True
    return False


def code_scores(pred_html: str, ref_html: str | None) -> dict[str, float | None]:
    """BLEU, TreeBLEU, valid HTML (0/1), length ratio (prediction/reference tokens), repetition loop (0/1)."""
    out: dict[str, float | None] = {
        "valid_html": float(is_valid_html(pred_html)),
        "repetition_loop": float(has_repetition_loop(pred_html)),
        "bleu": None, "tree_bleu": None, "length_ratio": None,
    }
    if ref_html is not None:
        n_ref = len(html_tokens(ref_html))
        out["bleu"] = bleu(pred_html, ref_html)
        out["tree_bleu"] = tree_bleu(pred_html, ref_html)
        out["length_ratio"] = len(html_tokens(pred_html)) / n_ref if n_ref else None
    return out


# --------------------------------------------------------------------------------------------------
# One page, many pages
# --------------------------------------------------------------------------------------------------


def render_blocks(r: RenderLike) -> list[Block]:
    """Blocks of one render, normalised by its page size (the image size when the page size is unknown)."""
    w = r.page_width or r.image.width
    h = r.page_height or r.image.height
    return blocks_from_boxes(r.boxes, w, h)


def page_scores(pred: RenderLike, ref: RenderLike | None, *, ref_image: Image.Image | None = None,
                pred_html: str | None = None, ref_html: str | None = None,
                clip: ClipScorer | None = None, try_merges: bool = True) -> dict[str, Any]:
    """All scores of one page. `ref` is the render of the reference HTML (its text boxes give the block
    scores); `ref_image` is the screenshot the visual scores compare against (default: ref's image).
    Without a reference render the block scores are None and `block_note` says why."""
    image = ref_image if ref_image is not None else (ref.image if ref is not None else None)
    if image is None:
        raise ValueError("page_scores needs a reference render or a reference screenshot")
    out: dict[str, Any] = {}
    pred_blocks = render_blocks(pred)
    if ref is not None:
        ref_blocks = render_blocks(ref)
        out.update(block_scores(pred_blocks, ref_blocks, try_merges=try_merges))
        out["n_pred_blocks"], out["n_ref_blocks"] = len(pred_blocks), len(ref_blocks)
    else:
        ref_blocks = []
        out.update({k: None for k in BLOCK_KEYS})
        out["block_note"] = ("reference is a screenshot without HTML: no DOM text boxes to match, and no OCR "
                             "is used, so only the whole-page scores are given")
    out["visual"] = visual_similarity(pred.image, image)
    if clip is not None:
        out["clip"] = clip.similarity(pred.image, image, pred_blocks, ref_blocks)
    if pred_html is not None:
        out.update(code_scores(pred_html, ref_html))
    return out


def overall(scores: Mapping[str, Any]) -> float:
    """Design2Code's headline: the mean of the four block scores and the whole-page score (CLIP when
    present, else the SSIM `visual`); block scores missing (no reference HTML) leave the visual alone."""
    whole = scores.get("clip")
    whole = scores.get("visual") if whole is None else whole
    parts = [scores.get(k) for k in BLOCK_KEYS] + [whole]
    parts = [p for p in parts if p is not None]
    return float(np.mean(parts)) if parts else 0.0


def mean_scores(pages: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Mean over pages of every numeric score, skipping pages where a score is None."""
    keys: list[str] = []
    for p in pages:
        keys += [k for k, v in p.items() if k not in keys and (v is None or isinstance(v, (int, float)))
                 and not isinstance(v, bool)]
    out: dict[str, float | None] = {}
    for k in keys:
        vals = [float(p[k]) for p in pages if isinstance(p.get(k), (int, float)) and not isinstance(p.get(k), bool)
                and not (isinstance(p.get(k), float) and math.isnan(p[k]))]
        out[k] = float(np.mean(vals)) if vals else None
    return out
