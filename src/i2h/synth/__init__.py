"""Seeded synthetic WebSight-like pages: every page is a pure function of (seed, index, style)."""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from functools import lru_cache

from faker import Faker

from .sections import APP_SECTIONS, MIDDLE_SECTIONS, SECTIONS, make_theme, sidebar_layout
from .tree import E, el, to_html

STYLES = ("tailwind", "css")
PAGE_KINDS = ("landing", "app", "content")
MIN_TAGS, MAX_TAGS = 20, 64  # (the footer may overshoot the per-page budget by a little)
  # WebSight pages have about 19 tags; a small model must be able to learn these


@dataclass(frozen=True)
class SynthPage:
    html: str
    seed: int
    index: int
    style: str  # "tailwind" or "css"
    kind: str  # "landing", "app" or "content"
    sections: tuple[str, ...]
    n_tags: int


def page_seed(seed: int, index: int, salt: str = "") -> int:
    """A 64-bit seed for page (seed, index): a hash, so neighbouring indices share no random stream."""
    digest = hashlib.blake2b(f"i2h-synth:{seed}:{index}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@lru_cache(maxsize=1)
def _faker() -> Faker:
    # Building a Faker loads every provider (slow); one per process, re-seeded per page, is equivalent.
    return Faker("en_US")


def resolve_style(style: str, seed: int, index: int) -> str:
    """`mixed` picks tailwind or css per page, itself a function of (seed, index)."""
    if style in STYLES:
        return style
    if style == "mixed":
        return STYLES[page_seed(seed, index, "style") % 2]
    raise ValueError(f"style {style!r}: use tailwind, css or mixed")


def _build(rng: random.Random, fake: Faker) -> tuple[E, str, tuple[str, ...], str]:
    theme = make_theme(rng)
    kind = rng.choices(PAGE_KINDS, [6, 2, 2])[0]
    budget = rng.randint(40, MAX_TAGS - 4)
    names: list[str] = []
    parts: list[E] = []

    def add(name: str, into: list[E]) -> bool:
        node = SECTIONS[name](rng, fake, theme)
        used = sum(p.count_tags() for p in parts) + sum(p.count_tags() for p in into if into is not parts)
        if used + node.count_tags() > budget and names:
            return False
        into.append(node)
        names.append(name)
        return True

    if kind == "app":
        inner: list[E] = []
        # The sidebar and header cost about 18 tags; the main column gets what is left.
        pool = list(APP_SECTIONS)
        rng.shuffle(pool)
        names.append("sidebar")
        for name in pool[: rng.randint(1, 3)]:
            node = SECTIONS[name](rng, fake, theme)
            node = _flatten_for_app(node)
            if 18 + sum(p.count_tags() for p in inner) + node.count_tags() <= budget or not inner:
                inner.append(node)
                names.append(name)
        parts.append(sidebar_layout(rng, fake, theme, inner))
    else:
        if rng.random() < 0.15:
            add("banner", parts)
        add("navbar", parts)
        first = "hero" if kind == "landing" or rng.random() < 0.3 else rng.choice(["about", "blog", "faq"])
        add(first, parts)
        middle = [m for m in MIDDLE_SECTIONS if m != first]
        rng.shuffle(middle)
        want = rng.randint(1, 4)
        footer = SECTIONS["footer"](rng, fake, theme)
        reserve = footer.count_tags()
        for name in middle:
            if want == 0:
                break
            node = SECTIONS[name](rng, fake, theme)
            if sum(p.count_tags() for p in parts) + node.count_tags() + reserve > budget:
                continue
            parts.append(node)
            names.append(name)
            want -= 1
        if sum(p.count_tags() for p in parts) + reserve <= MAX_TAGS - 4:
            parts.append(footer)
            names.append("footer")
    body = el("body", f"{theme.font} {theme.page_bg}", *parts)
    title = fake.catch_phrase().title()
    return body, title, tuple(names), kind


def _flatten_for_app(node: E) -> E:
    """Inside the app's main column a section keeps its content but not its page-width container."""
    if node.tag == "section" and node.children and isinstance(node.children[0], E) and node.children[0].role == "container":
        return el("section", "mb-8", *node.children[0].children, role=node.role)
    return node


def generate_page(seed: int, index: int, style: str = "tailwind") -> SynthPage:
    """Page `index` of the stream `seed`: the same arguments give the same page, on any machine."""
    style = resolve_style(style, seed, index)
    s = page_seed(seed, index)
    rng = random.Random(s)
    fake = _faker()
    fake.seed_instance(s)
    body, title, names, kind = _build(rng, fake)
    return SynthPage(to_html(body, title, style), seed, index, style, kind, names, body.count_tags() + 4)


def generate_html(seed: int, index: int, style: str = "tailwind") -> str:
    return generate_page(seed, index, style).html


__all__ = ["SynthPage", "generate_page", "generate_html", "page_seed", "resolve_style", "STYLES"]
