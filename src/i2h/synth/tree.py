"""A tiny element tree for generated pages, written out as Tailwind classes or as plain CSS in <style>."""
from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from .tw2css import classes_to_css

VOID = frozenset({"img", "input", "br", "hr", "meta", "link"})
TAILWIND_URL = "https://cdn.jsdelivr.net/npm/tailwindcss@2.2.19/dist/tailwind.min.css"
# The plain-CSS pages get the few resets Tailwind's preflight would have given them, so the two styles of
# one page look alike; nothing more (every token here is a token the model must learn to write).
CSS_BASE = "body{margin:0}h1,h2,h3,h4,p,ul{margin:0}ul{padding:0;list-style:none}a{color:inherit;text-decoration:none}img{display:block;max-width:100%}"


@dataclass
class E:
    """An element: tag, Tailwind classes, children (elements or text), attributes, and a role naming its CSS class."""

    tag: str
    cls: str = ""
    children: list["E | str"] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)
    role: str = ""

    def count_tags(self) -> int:
        return 1 + sum(c.count_tags() for c in self.children if isinstance(c, E))


def el(tag: str, cls: str = "", *children: "E | str | None", role: str = "", **attrs: str) -> E:
    """Shorthand; None children are dropped so sections can write optional parts inline."""
    attrs = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
    return E(tag, " ".join(cls.split()), [c for c in children if c is not None], attrs, role)


def _attrs(attrs: dict[str, str]) -> str:
    return "".join(f' {k}="{escape(v, quote=True)}"' for k, v in attrs.items())


def _emit(node: E | str, out: list[str], class_of) -> None:
    if isinstance(node, str):
        out.append(escape(node, quote=False))
        return
    attrs = dict(node.attrs)
    cls = class_of(node)
    # class first: the order every WebSight page uses, so the model sees one convention
    head = f"<{node.tag}" + (f' class="{cls}"' if cls else "") + _attrs(attrs) + ">"
    out.append(head)
    if node.tag in VOID:
        return
    for child in node.children:
        _emit(child, out, class_of)
    out.append(f"</{node.tag}>")


def to_html(body: E, title: str, style: str) -> str:
    """The page in normalised form: no insignificant whitespace, double-quoted attributes, no comments."""
    if style == "tailwind":
        out: list[str] = []
        _emit(body, out, lambda n: n.cls)
        head = f'<meta charset="utf-8"><title>{escape(title, quote=False)}</title><link href="{TAILWIND_URL}" rel="stylesheet">'
        return f'<!DOCTYPE html><html lang="en"><head>{head}</head>{"".join(out)}</html>'
    if style != "css":
        raise ValueError(f"style {style!r}: use 'tailwind' or 'css'")
    # One CSS class per distinct (role, declarations); a role reused with other declarations gets a suffix.
    rules: dict[tuple[str, tuple], str] = {}
    taken: set[str] = set()
    order: list[tuple[str, tuple]] = []

    def class_of(node: E) -> str:
        if not node.cls:
            return ""
        decls = tuple(classes_to_css(node.cls))
        if not decls:
            return ""
        if node.tag == "body":
            return ""  # body is styled by its tag selector
        role = node.role or node.tag
        key = (role, decls)
        if key not in rules:
            name, k = role, 2
            while name in taken:
                name, k = f"{role}-{k}", k + 1
            taken.add(name)
            rules[key] = name
            order.append(key)
        return rules[key]

    out = []
    _emit(body, out, class_of)
    css = [CSS_BASE]
    body_decls = classes_to_css(body.cls) if body.cls else []
    if body_decls:
        css.append("body{" + ";".join(f"{p}:{v}" for p, v in body_decls) + "}")
    for key in order:
        css.append("." + rules[key] + "{" + ";".join(f"{p}:{v}" for p, v in key[1]) + "}")
    head = f'<meta charset="utf-8"><title>{escape(title, quote=False)}</title><style>{"".join(css)}</style>'
    return f'<!DOCTYPE html><html lang="en"><head>{head}</head>{"".join(out)}</html>'
