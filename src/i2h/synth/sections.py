"""Section builders: each is a pure function (rng, fake, theme) -> element, WebSight-sized and varied."""
from __future__ import annotations

import random
from dataclasses import dataclass

from faker import Faker

from .tree import E, el

# The colours the Tailwind 2.2.19 CDN build ships (its default palette).
HUES = ("gray", "red", "yellow", "green", "blue", "indigo", "purple", "pink")
ACCENTS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink")


@dataclass(frozen=True)
class Theme:
    """Everything that makes two pages look different though built from the same sections."""

    primary: str
    accent: str
    dark: bool
    font: str
    btn_round: str
    card_round: str
    shadow: str
    pad_y: str
    pad_x: str
    container: str
    center: bool
    h1: str
    h2: str
    weight: str
    button: str  # solid | outline | soft
    gap: str
    muted: str  # text colour for body copy
    card_bg: str
    page_bg: str
    border: bool

    def c(self, kind: str, shade: int, hue: str | None = None) -> str:
        return f"{kind}-{hue or self.primary}-{shade}"


def make_theme(rng: random.Random) -> Theme:
    primary = rng.choice(HUES[1:] * 3 + ("gray",))
    dark = rng.random() < 0.15
    return Theme(
        primary=primary,
        accent=rng.choice([h for h in ACCENTS if h != primary]),
        dark=dark,
        font=rng.choices(["font-sans", "font-serif", "font-mono"], [7, 2, 1])[0],
        btn_round=rng.choice(["rounded", "rounded-md", "rounded-lg", "rounded-full", "rounded-none"]),
        card_round=rng.choice(["rounded", "rounded-lg", "rounded-xl", "rounded-2xl", "rounded-none"]),
        shadow=rng.choice(["", "shadow", "shadow-md", "shadow-lg"]),
        pad_y=rng.choice(["py-8", "py-10", "py-12", "py-16", "py-20"]),
        pad_x=rng.choice(["px-4", "px-6", "px-8", "px-12"]),
        container=rng.choice(["max-w-4xl mx-auto", "max-w-5xl mx-auto", "max-w-6xl mx-auto", "max-w-7xl mx-auto", "container mx-auto"]),
        center=rng.random() < 0.55,
        h1=rng.choice(["text-3xl", "text-4xl", "text-5xl", "text-6xl"]),
        h2=rng.choice(["text-2xl", "text-3xl", "text-4xl"]),
        weight=rng.choice(["font-bold", "font-extrabold", "font-semibold"]),
        button=rng.choice(["solid", "solid", "outline", "soft"]),
        gap=rng.choice(["gap-4", "gap-6", "gap-8", "gap-10"]),
        muted=("text-gray-300" if dark else rng.choice(["text-gray-500", "text-gray-600", "text-gray-700"])),
        card_bg=("bg-gray-800" if dark else rng.choice(["bg-white", "bg-white", "bg-gray-50", f"bg-{primary}-50"])),
        page_bg=("bg-gray-900 text-white" if dark else rng.choice(["bg-white", "bg-white", "bg-gray-50", "bg-gray-100"])),
        border=rng.random() < 0.4,
    )


# ---------------------------------------------------------------------------------------------------------
# Small parts


def title_case(text: str) -> str:
    return text[:1].upper() + text[1:]


def button(rng: random.Random, t: Theme, label: str, *, big: bool = False, invert: bool = False) -> E:
    size = "px-6 py-3 text-lg" if big else rng.choice(["px-4 py-2", "px-5 py-2", "px-4 py-2 text-sm"])
    if invert:
        look = f"bg-white {t.c('text', 700)}"
    elif t.button == "solid":
        look = f"{t.c('bg', 600)} text-white"
    elif t.button == "outline":
        look = f"border-2 {t.c('border', 600)} {t.c('text', 600)}"
    else:
        look = f"{t.c('bg', 100)} {t.c('text', 700)}"
    return el("a", f"inline-block {size} {look} {t.btn_round} font-semibold", label, role="button", href="#")


def heading(t: Theme, text: str, level: int = 2, extra: str = "") -> E:
    size = t.h1 if level == 1 else (t.h2 if level == 2 else "text-xl")
    weight = t.weight if level < 3 else "font-semibold"
    return el(f"h{level}", f"{size} {weight} {extra}", text, role=f"h{level}")


def para(t: Theme, text: str, extra: str = "") -> E:
    return el("p", f"{t.muted} {extra}", text, role="text")


def img(w: int, h: int, cls: str, alt: str) -> E:
    # Placeholder URLs carry their size; the renderer answers them with a grey image of that size.
    return el("img", cls, src=f"https://placehold.co/{w}x{h}", alt=alt, role="image")


def section_wrap(t: Theme, rng: random.Random, *children, bg: str = "", role: str = "section") -> E:
    inner = el("div", f"{t.container} {t.pad_x}", *children, role="container")
    return el("section", f"{t.pad_y} {bg}", inner, role=role)


def section_title(rng: random.Random, fake: Faker, t: Theme, title: str, sub: bool = True) -> list[E]:
    align = "text-center" if t.center else ""
    out = [heading(t, title, 2, f"{align} mb-4")]
    if sub and rng.random() < 0.6:
        out.append(para(t, fake.sentence(nb_words=rng.randint(8, 14)), f"{align} mb-8"))
    return out


def card_cls(t: Theme, pad: str = "p-6") -> str:
    return f"{t.card_bg} {t.card_round} {t.shadow} {pad} " + ("border border-gray-200" if t.border and not t.dark else "")


# ---------------------------------------------------------------------------------------------------------
# Sections


def navbar(rng, fake, t):
    brand = fake.company().split(",")[0].split(" ")[0]
    links = [title_case(w) for w in rng.sample(["home", "features", "pricing", "about", "blog", "contact", "docs", "careers", "products", "services"], rng.randint(3, 5))]
    dark_nav = rng.random() < 0.35
    nav_bg = t.c("bg", rng.choice([600, 700, 800])) + " text-white" if dark_nav else ("bg-gray-800" if t.dark else rng.choice(["bg-white", "bg-gray-100"]))
    link_cls = rng.choice(["", "font-medium", "text-sm font-medium", "hover:underline"])
    link_cls = link_cls.replace("hover:underline", "")
    ul = el("ul", f"flex {rng.choice(['gap-4', 'gap-6', 'gap-8'])}", *[el("li", "", el("a", link_cls, l, href="#", role="nav-link"), role="nav-item") for l in links], role="nav-links")
    right = [ul]
    if rng.random() < 0.5:
        right.append(button(rng, t, rng.choice(["Sign up", "Get started", "Log in", "Contact us", "Try free"]), invert=dark_nav))
    bar = el("div", f"{t.container} {t.pad_x} py-4 flex items-center justify-between", el("a", f"text-xl {t.weight}", brand, href="#", role="brand"),
             el("div", "flex items-center gap-6", *right, role="nav-right") if len(right) > 1 else ul, role="nav-bar")
    return el("nav", f"{nav_bg} {rng.choice(['', 'shadow', 'border-b border-gray-200'])}", bar, role="navbar")


def hero(rng, fake, t):
    title = title_case(fake.catch_phrase())
    text = fake.paragraph(nb_sentences=rng.randint(1, 3))
    first, second = rng.sample(["Get started", "Learn more", "Start free trial", "Book a demo", "Explore", "Contact sales", "See pricing"], 2)
    buttons = [button(rng, t, first, big=True)]
    if rng.random() < 0.5:
        buttons.append(el("a", f"inline-block px-6 py-3 text-lg {t.btn_round} font-semibold border border-gray-300", second, href="#", role="button-alt"))
    actions = el("div", "flex gap-4 " + ("justify-center" if t.center else ""), *buttons, role="actions")
    bg = rng.choice(["", t.c("bg", 50), f"bg-gradient-to-r {t.c('from', 600)} {t.c('to', 400, t.accent)} text-white", t.c("bg", 700) + " text-white"])
    if "text-white" in bg:
        text_el = el("p", "text-lg mb-8 opacity-90", text, role="lead")
    else:
        text_el = para(t, text, "text-lg mb-8")
    copy = [heading(t, title, 1, "mb-6 leading-tight"), text_el, actions]
    if rng.random() < 0.45:
        body = el("div", f"grid grid-cols-2 {t.gap} items-center", el("div", "", *copy, role="hero-copy"), img(rng.choice([560, 600, 640]), rng.choice([360, 400, 420]), f"w-full {t.card_round}", "Hero image"), role="hero-grid")
    else:
        body = el("div", ("text-center max-w-3xl mx-auto" if t.center else "max-w-3xl"), *copy, role="hero-copy")
    return el("header", f"{rng.choice(['py-16', 'py-20', 'py-24', 'py-32'])} {bg}", el("div", f"{t.container} {t.pad_x}", body, role="container"), role="hero")


def features(rng, fake, t):
    n = rng.choice([3, 3, 4, 2, 6])
    cols = {2: "grid-cols-2", 3: "grid-cols-3", 4: "grid-cols-4", 6: "grid-cols-3"}[n]
    icon_style = rng.choice(["none", "circle", "square"])
    items = []
    for _ in range(n):
        parts = []
        if icon_style != "none":
            shape = "rounded-full" if icon_style == "circle" else "rounded-lg"
            parts.append(el("div", f"w-12 h-12 {shape} {t.c('bg', 100)} {t.c('text', 600)} flex items-center justify-center mb-4 font-bold", fake.random_uppercase_letter(), role="icon"))
        parts += [heading(t, title_case(fake.bs()), 3, "mb-2"), para(t, fake.sentence(nb_words=rng.randint(8, 16)))]
        items.append(el("div", card_cls(t) if rng.random() < 0.5 else "", *parts, role="feature"))
    return section_wrap(t, rng, *section_title(rng, fake, t, rng.choice(["Features", "Why choose us", "What we offer", "Our services", title_case(fake.catch_phrase())])),
                        el("div", f"grid {cols} {t.gap}", *items, role="feature-grid"), role="features")


def cards(rng, fake, t):
    n = rng.choice([2, 3, 3])
    items = []
    for _ in range(n):
        items.append(el("div", f"{card_cls(t, 'p-0')} overflow-hidden",
                        img(400, 240, "w-full h-40 object-cover", "Card image") if rng.random() < 0.7 else None,
                        el("div", "p-5", heading(t, title_case(fake.catch_phrase()), 3, "mb-2"), para(t, fake.sentence(nb_words=12), "text-sm mb-4"),
                           el("a", f"{t.c('text', 600)} font-semibold", rng.choice(["Read more", "View details", "Learn more →"]), href="#", role="card-link") if rng.random() < 0.6 else None, role="card-body"),
                        role="card"))
    return section_wrap(t, rng, *section_title(rng, fake, t, rng.choice(["Our products", "Latest projects", "Explore", "Highlights", title_case(fake.bs())])),
                        el("div", f"grid grid-cols-{n} {t.gap}", *items, role="card-grid"), role="cards")


def pricing(rng, fake, t):
    names = rng.choice([["Basic", "Pro", "Enterprise"], ["Starter", "Growth"], ["Free", "Team"], ["Personal", "Business"]])
    hi = rng.randrange(len(names))
    base = rng.choice([5, 9, 10, 12, 15, 19])
    plans = []
    for i, name in enumerate(names):
        price = 0 if name == "Free" else base * (i + 1) * rng.choice([1, 2])
        feats = [fake.bs().capitalize() for _ in range(2)]
        special = i == hi
        box = f"{t.c('bg', 600)} text-white {t.card_round} {t.shadow or 'shadow-lg'} p-8" if special else card_cls(t, "p-8")
        plans.append(el("div", box,
                        el("h3", "text-xl font-semibold mb-2", name, role="plan-name"),
                        el("p", "text-4xl font-bold mb-6", f"${price}", el("span", "text-base font-normal", "/mo", role="per"), role="price"),
                        el("ul", "mb-8", *[el("li", "py-1", f"✓ {f}", role="plan-feature") for f in feats], role="plan-features"),
                        button(rng, t, "Choose plan", invert=special), role="plan"))
    return section_wrap(t, rng, *section_title(rng, fake, t, rng.choice(["Pricing", "Simple, transparent pricing", "Plans for every team"])),
                        el("div", f"grid grid-cols-{len(names)} {t.gap} " + ("text-center" if t.center else ""), *plans, role="plans"), role="pricing")


def testimonials(rng, fake, t):
    n = rng.choice([1, 2, 3])
    quotes = []
    for _ in range(n):
        name = fake.name()
        who = el("div", "flex items-center gap-3 mt-4",
                 img(48, 48, "w-12 h-12 rounded-full", name) if rng.random() < 0.5 else None,
                 el("div", "", el("p", "font-semibold", name, role="person"), el("p", f"text-sm {t.muted}", f"{fake.job()}, {fake.company()}", role="person-role"), role="who"), role="author")
        quotes.append(el("blockquote", card_cls(t), el("p", "italic text-lg", f"“{fake.paragraph(nb_sentences=2)}”", role="quote"), who, role="testimonial"))
    return section_wrap(t, rng, *section_title(rng, fake, t, rng.choice(["What our customers say", "Testimonials", "Loved by teams everywhere"]), sub=False),
                        el("div", f"grid grid-cols-{n} {t.gap}", *quotes, role="quotes"), bg=rng.choice(["", t.c("bg", 50) if not t.dark else ""]), role="testimonials")


def stats(rng, fake, t):
    n = rng.choice([3, 4])
    items = []
    for _ in range(n):
        value = rng.choice([f"{rng.randint(2, 99)}k+", f"{rng.randint(10, 99)}%", f"${rng.randint(1, 50)}M", f"{rng.randint(100, 999)}", f"{rng.randint(2, 24)}/7"])
        items.append(el("div", "text-center", el("p", f"text-4xl font-bold {t.c('text', 600)}", value, role="stat-value"),
                        el("p", f"{t.muted} mt-2", title_case(" ".join(fake.words(rng.randint(1, 3)))), role="stat-label"), role="stat"))
    return section_wrap(t, rng, el("div", f"grid grid-cols-{n} {t.gap} {card_cls(t, 'p-8')}", *items, role="stats-grid"), role="stats")


def table(rng, fake, t):
    kind = rng.choice(["orders", "users", "invoices"])
    if kind == "orders":
        cols = ["Order", "Customer", "Date", "Amount"]
        row = lambda: [f"#{rng.randint(1000, 9999)}", fake.name(), fake.date(pattern="%b %d, %Y"), f"${rng.randint(10, 999)}.{rng.randint(0, 99):02d}"]
    elif kind == "users":
        cols = ["Name", "Email", "Role", "Status"]
        row = lambda: [fake.name(), fake.email(), fake.job().split(",")[0], rng.choice(["Active", "Pending", "Inactive"])]
    else:
        cols = ["Invoice", "Client", "Due", "Total"]
        row = lambda: [f"INV-{rng.randint(100, 999)}", fake.company(), fake.date(pattern="%Y-%m-%d"), f"${rng.randint(100, 9999)}"]
    cols = cols[: rng.choice([3, 4])]
    head_bg = rng.choice(["bg-gray-100", t.c("bg", 100), t.c("bg", 600) + " text-white"]) if not t.dark else "bg-gray-700"
    rows = [el("tr", "border-t border-gray-200", *[el("td", "px-4 py-3", v, role="cell") for v in row()[: len(cols)]], role="row") for _ in range(rng.randint(2, 3))]
    tbl = el("table", f"w-full text-left {card_cls(t, 'p-0')}",
             el("thead", head_bg, el("tr", "", *[el("th", "px-4 py-3 font-semibold", c, role="head-cell") for c in cols], role="head-row"), role="thead"),
             el("tbody", "", *rows, role="tbody"), role="table")
    return section_wrap(t, rng, heading(t, rng.choice(["Recent orders", "Team members", "Invoices", "Transactions", "Users"]), 2, "mb-6"), tbl, role="table-section")


def form(rng, fake, t):
    fields = rng.sample([("Name", "text", fake.name()), ("Email", "email", fake.email()), ("Company", "text", fake.company()),
                         ("Phone", "tel", fake.phone_number()), ("Subject", "text", fake.catch_phrase())], rng.randint(2, 4))
    inp = f"w-full border border-gray-300 {t.btn_round if t.btn_round != 'rounded-full' else 'rounded-md'} px-3 py-2"
    rows = [el("div", "mb-4", el("label", "block text-sm font-medium mb-1", label, role="label"), el("input", inp, type=kind, placeholder=ph, role="input"), role="field")
            for label, kind, ph in fields]
    if rng.random() < 0.6:
        rows.append(el("div", "mb-4", el("label", "block text-sm font-medium mb-1", "Message", role="label"), el("textarea", inp + " h-28", "", placeholder=fake.sentence(), role="input"), role="field"))
    submit = el("button", f"{t.c('bg', 600)} text-white px-6 py-2 {t.btn_round} font-semibold", rng.choice(["Send message", "Submit", "Subscribe", "Create account"]), type="submit", role="submit")
    box = el("form", f"{card_cls(t, 'p-8')} " + rng.choice(["max-w-lg mx-auto", "max-w-xl mx-auto", "max-w-md"]), *rows, submit, role="form")
    return section_wrap(t, rng, *section_title(rng, fake, t, rng.choice(["Contact us", "Get in touch", "Request a demo", "Join the waitlist"])), box, role="form-section")


def gallery(rng, fake, t):
    n = rng.choice([3, 4, 6, 8])
    cols = {3: 3, 4: rng.choice([2, 4]), 6: 3, 8: 4}[n]
    h = rng.choice(["h-40", "h-48", "h-56"])
    pics = [img(rng.choice([400, 480]), rng.choice([300, 320]), f"w-full {h} object-cover {t.card_round}", fake.word()) for _ in range(n)]
    return section_wrap(t, rng, *section_title(rng, fake, t, rng.choice(["Gallery", "Our work", "Portfolio", "Recent shots"])),
                        el("div", f"grid grid-cols-{cols} {rng.choice(['gap-2', 'gap-4', 'gap-6'])}", *pics, role="gallery-grid"), role="gallery")


def blog(rng, fake, t):
    n = rng.choice([2, 3, 3])
    posts = []
    layout = rng.choice(["grid", "list"])
    for _ in range(n):
        meta = el("p", f"text-sm {t.muted} mb-2", f"{fake.date(pattern='%B %d, %Y')} · {fake.name()}", role="post-meta")
        body = [meta, heading(t, title_case(fake.sentence(nb_words=rng.randint(4, 8))).rstrip("."), 3, "mb-2"), para(t, fake.paragraph(nb_sentences=2))]
        if layout == "grid":
            posts.append(el("article", card_cls(t), *body, role="post"))
        else:
            posts.append(el("article", "flex gap-6 py-6 border-b border-gray-200", img(200, 140, f"w-48 h-32 object-cover {t.card_round}", "Post image") if rng.random() < 0.6 else None,
                            el("div", "", *body, role="post-body"), role="post-row"))
    wrap = el("div", f"grid grid-cols-{n} {t.gap}", *posts, role="posts") if layout == "grid" else el("div", "", *posts, role="posts-list")
    return section_wrap(t, rng, *section_title(rng, fake, t, rng.choice(["From the blog", "Latest articles", "News", "Stories"]), sub=False), wrap, role="blog")


def faq(rng, fake, t):
    n = rng.randint(2, 4)
    items = [el("div", rng.choice(["py-4 border-b border-gray-200", card_cls(t, "p-5") + " mb-4"]),
                el("h3", "font-semibold text-lg mb-2", fake.sentence(nb_words=rng.randint(5, 9)).rstrip(".") + "?", role="question"),
                para(t, fake.paragraph(nb_sentences=rng.randint(1, 2))), role="faq-item") for _ in range(n)]
    return section_wrap(t, rng, *section_title(rng, fake, t, rng.choice(["Frequently asked questions", "FAQ", "Questions & answers"]), sub=False),
                        el("div", "max-w-3xl mx-auto", *items, role="faq-list"), role="faq")


def cta(rng, fake, t):
    inner = [heading(t, title_case(fake.catch_phrase()), 2, "mb-4"), el("p", "text-lg mb-8 opacity-90", fake.sentence(nb_words=12), role="lead"),
             button(rng, t, rng.choice(["Get started today", "Start now", "Sign up free", "Talk to us"]), big=True, invert=True)]
    box = el("div", f"{t.c('bg', rng.choice([600, 700, 800]))} text-white {t.card_round} p-12 " + ("text-center" if t.center else ""), *inner, role="cta-box")
    return section_wrap(t, rng, box, role="cta")


def newsletter(rng, fake, t):
    row = el("form", "flex gap-2 " + ("justify-center" if t.center else ""),
             el("input", f"border border-gray-300 {t.btn_round} px-4 py-2 w-72", type="email", placeholder=rng.choice(["Your email", "you@example.com", "Enter your email"]), role="input"),
             el("button", f"{t.c('bg', 600)} text-white px-5 py-2 {t.btn_round} font-semibold", "Subscribe", type="submit", role="submit"), role="subscribe")
    return section_wrap(t, rng, heading(t, rng.choice(["Stay in the loop", "Subscribe to our newsletter", "Get updates"]), 2, "mb-2 " + ("text-center" if t.center else "")),
                        para(t, fake.sentence(nb_words=10), "mb-6 " + ("text-center" if t.center else "")), row, bg=t.c("bg", 50) if not t.dark else "bg-gray-800", role="newsletter")


def team(rng, fake, t):
    n = rng.choice([3, 4])
    people = [el("div", "text-center", img(160, 160, "w-24 h-24 rounded-full mx-auto mb-3", "Portrait"), el("p", "font-semibold", fake.name(), role="person"),
                 el("p", f"text-sm {t.muted}", fake.job(), role="person-role"), role="member") for _ in range(n)]
    return section_wrap(t, rng, *section_title(rng, fake, t, rng.choice(["Meet the team", "Our people", "Leadership"])),
                        el("div", f"grid grid-cols-{n} {t.gap}", *people, role="team-grid"), role="team")


def logos(rng, fake, t):
    n = rng.choice([4, 5, 6])
    names = [fake.company().split(" ")[0].strip(",") for _ in range(n)]
    return section_wrap(t, rng, el("p", f"text-center text-sm uppercase tracking-wider {t.muted} mb-6", rng.choice(["Trusted by teams at", "Our partners", "As featured in"]), role="eyebrow"),
                        el("div", "flex justify-between items-center flex-wrap gap-6", *[el("span", f"text-2xl font-bold text-gray-400", nm, role="logo") for nm in names], role="logos-row"), role="logos")


def steps(rng, fake, t):
    n = 3
    items = [el("div", "flex gap-4", el("span", f"w-10 h-10 flex-shrink-0 rounded-full {t.c('bg', 600)} text-white flex items-center justify-center font-bold", str(i + 1), role="step-num"),
                el("div", "", heading(t, title_case(fake.bs()), 3, "mb-1"), para(t, fake.sentence(nb_words=10)), role="step-body"), role="step") for i in range(n)]
    layout = rng.choice([f"grid grid-cols-{n} {t.gap}", f"flex flex-col {t.gap} max-w-2xl"])
    return section_wrap(t, rng, *section_title(rng, fake, t, rng.choice(["How it works", "Get started in minutes", "Our process"])), el("div", layout, *items, role="steps-list"), role="steps")


def about(rng, fake, t):
    copy = el("div", "", heading(t, rng.choice(["About us", "Our story", "Who we are", title_case(fake.catch_phrase())]), 2, "mb-4"),
              para(t, fake.paragraph(nb_sentences=3), "mb-4"), para(t, fake.paragraph(nb_sentences=2)) if rng.random() < 0.5 else None, role="about-copy")
    pic = img(560, 400, f"w-full {t.card_round}", "About image")
    parts = [copy, pic] if rng.random() < 0.5 else [pic, copy]
    return section_wrap(t, rng, el("div", f"grid grid-cols-2 {t.gap} items-center", *parts, role="about-grid"), role="about")


def banner(rng, fake, t):
    hue = rng.choice(["yellow", "green", "blue", t.primary])
    return el("div", f"bg-{hue}-100 text-{hue}-800 text-center py-2 px-4 text-sm", el("strong", "font-semibold", rng.choice(["New:", "Update:", "Heads up:"]), role="banner-tag"), " " + fake.sentence(nb_words=9), role="banner")


def contact(rng, fake, t):
    rows = [("Address", fake.address().replace("\n", ", ")), ("Phone", fake.phone_number()), ("Email", fake.company_email())]
    items = [el("div", "mb-4", el("p", "font-semibold", k, role="contact-key"), para(t, v), role="contact-item") for k, v in rows[: rng.randint(2, 3)]]
    return section_wrap(t, rng, heading(t, rng.choice(["Visit us", "Contact information", "Where to find us"]), 2, "mb-6"),
                        el("div", f"grid grid-cols-2 {t.gap}", el("div", "", *items, role="contact-list"), img(560, 320, f"w-full {t.card_round}", "Map"), role="contact-grid"), role="contact")


def footer(rng, fake, t):
    brand = fake.company()
    bg = rng.choice(["bg-gray-900 text-gray-300", "bg-gray-100 text-gray-600", t.c("bg", 800) + " text-white", "border-t border-gray-200"])
    if rng.random() < 0.5:
        cols = []
        for title in rng.sample(["Product", "Company", "Resources", "Legal", "Support"], 2):
            cols.append(el("div", "", el("h4", "font-semibold mb-3", title, role="footer-title"),
                           el("ul", "", *[el("li", "mb-1 text-sm", el("a", "", title_case(fake.word()), href="#", role="footer-link"), role="footer-item") for _ in range(2)], role="footer-links"), role="footer-col"))
        top = el("div", f"grid grid-cols-{len(cols) + 1} {t.gap} mb-8", el("div", "", el("p", "text-xl font-bold mb-2", brand, role="brand"), el("p", "text-sm", fake.catch_phrase(), role="tagline"), role="footer-brand"), *cols, role="footer-grid")
    else:
        top = None
    bottom = el("div", "flex justify-between text-sm", el("p", "", f"© {rng.randint(2019, 2025)} {brand}. All rights reserved.", role="copyright"),
                el("div", "flex gap-4", *[el("a", "", w, href="#", role="footer-link") for w in rng.sample(["Privacy", "Terms", "Cookies", "Contact"], 2)], role="legal"), role="footer-bottom")
    return el("footer", f"{bg} py-10", el("div", f"{t.container} {t.pad_x}", top, bottom, role="container"), role="footer")


def sidebar_layout(rng, fake, t, main_sections):
    """App page: a side navigation beside a main column that holds other sections."""
    links = [title_case(w) for w in rng.sample(["dashboard", "projects", "team", "reports", "settings", "messages", "calendar", "billing"], rng.randint(4, 6))]
    side_bg = rng.choice(["bg-gray-900 text-gray-200", "bg-gray-100", t.c("bg", 700) + " text-white", "bg-white border-r border-gray-200"])
    active = rng.randrange(len(links))
    aside = el("aside", f"{rng.choice(['w-56', 'w-64', 'w-72'])} {side_bg} p-6 min-h-screen",
               el("p", f"text-xl {t.weight} mb-8", fake.company().split(" ")[0].strip(","), role="brand"),
               el("ul", "", *[el("li", "", el("a", "block px-3 py-2 rounded " + ("bg-black bg-opacity-10 font-semibold" if i == active else ""), l, href="#", role="side-link"), role="side-item") for i, l in enumerate(links)], role="side-links"),
               role="sidebar")
    top = el("div", "flex justify-between items-center mb-6", heading(t, rng.choice(["Dashboard", "Overview", "Welcome back, " + fake.first_name()]), 1, ""),
             button(rng, t, rng.choice(["New project", "Export", "Invite"])) if rng.random() < 0.6 else None, role="main-head")
    main = el("main", f"flex-1 {rng.choice(['p-6', 'p-8', 'p-10'])}", top, *main_sections, role="main")
    return el("div", "flex", aside, main, role="layout")


SECTIONS = {
    "navbar": navbar, "hero": hero, "features": features, "cards": cards, "pricing": pricing, "testimonials": testimonials,
    "stats": stats, "table": table, "form": form, "gallery": gallery, "blog": blog, "faq": faq, "cta": cta,
    "newsletter": newsletter, "team": team, "logos": logos, "steps": steps, "about": about, "banner": banner,
    "contact": contact, "footer": footer,
}
# Sections that make sense inside an app's main column (flat: no page-width containers needed there).
APP_SECTIONS = ("stats", "table", "form", "cards", "features", "blog", "faq", "gallery", "team")
MIDDLE_SECTIONS = ("features", "cards", "pricing", "testimonials", "stats", "table", "form", "gallery", "blog", "faq",
                   "cta", "newsletter", "team", "logos", "steps", "about", "contact")
