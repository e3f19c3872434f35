"""Tailwind 2.2.19 class -> plain CSS declarations, read from the vendored stylesheet (for the `css` style)."""
from __future__ import annotations

import re
from functools import lru_cache

from ..render import tailwind_css

# Tailwind's preflight gives every element `border:0 solid #e5e7eb`; without it, `border-width` alone draws
# nothing, so the plain-CSS output adds the style and colour Tailwind would have inherited.
BORDER_DEFAULT_COLOR = "#e5e7eb"


def _top_level_rules(css: str):
    """Yield (selector, body) for rules outside at-rules (the responsive variants live in @media blocks)."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    depth, start, open_at = 0, 0, 0
    for m in re.finditer(r"[{}]", css):
        if m.group() == "{":
            if depth == 0:
                open_at = m.start()
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                selector = css[start:open_at].strip()
                if not selector.startswith("@"):
                    yield selector, css[open_at + 1 : m.start()]
                start = m.end()


def _decls(body: str) -> list[tuple[str, str]]:
    out = []
    for part in re.split(r";(?![^(]*\))", body):
        if ":" in part:
            prop, value = part.split(":", 1)
            out.append((prop.strip(), value.strip()))
    return out


def _resolve(decls: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Inline Tailwind's --tw-* variables, drop them, and write opaque rgba() colours as hex."""
    env = {p: v for p, v in decls if p.startswith("--")}

    def sub(value: str) -> str:
        for _ in range(5):  # variables refer to variables; a few passes settle them
            new = re.sub(
                r"var\((--[\w-]+)(?:,\s*([^()]*(?:\([^()]*\))?[^()]*))?\)",
                lambda m: env.get(m.group(1), m.group(2) if m.group(2) is not None else ""),
                value,
            )
            if new == value:
                break
            value = new
        return value

    out = []
    for prop, value in decls:
        if prop.startswith("--"):
            continue
        value = sub(value)
        value = re.sub(r"(?:0 0 #0000,\s*)+", "", value)  # empty ring shadows in front of the real one
        value = re.sub(
            r"rgba\((\d+),\s*(\d+),\s*(\d+),\s*1\)",
            lambda m: "#%02x%02x%02x" % tuple(int(g) for g in m.groups()),
            value,
        )
        value = re.sub(r"\s*,\s*", ",", value)  # the normalised form has no space after commas
        out.append((prop, value))
    return out


@lru_cache(maxsize=1)
def class_table() -> dict[str, tuple[tuple[str, str], ...]]:
    """Every simple `.class{...}` rule in Tailwind 2.2.19 (no variants), as raw declarations."""
    table: dict[str, list[tuple[str, str]]] = {}
    for selector, body in _top_level_rules(tailwind_css().decode("utf-8")):
        for sel in selector.split(","):
            m = re.fullmatch(r"\.((?:[\w-]|\\.)+)", sel.strip())
            if m:
                name = re.sub(r"\\(.)", r"\1", m.group(1))
                table.setdefault(name, []).extend(_decls(body))
    return {k: tuple(v) for k, v in table.items()}


def classes_to_css(classes: str) -> list[tuple[str, str]]:
    """Declarations for a class list, later classes winning per property; KeyError names an unknown class."""
    table = class_table()
    raw: list[tuple[str, str]] = []
    for cls in classes.split():
        if cls not in table:
            raise KeyError(f"{cls!r} is not a Tailwind 2.2.19 class")
        raw.extend(table[cls])
    # Resolved over the whole class list: a gradient's stops come from its `from-*` and `to-*` classes.
    merged: dict[str, str] = dict(_resolve(raw))
    if any(p.startswith("border") and p.endswith("width") for p in merged):
        merged.setdefault("border-style", "solid")
        merged.setdefault("border-color", BORDER_DEFAULT_COLOR)
    for box in ("padding", "margin"):
        sides = [merged.get(f"{box}-{side}") for side in ("top", "right", "bottom", "left")]
        if all(sides):  # four longhands -> one shorthand: fewer tokens for the model to write
            for side in ("top", "right", "bottom", "left"):
                del merged[f"{box}-{side}"]
            t, r, b, l = sides
            merged[box] = t if t == r == b == l else (f"{t} {r}" if (t, r) == (b, l) else f"{t} {r} {b} {l}")
    return list(merged.items())
