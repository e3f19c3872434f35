"""The HTTP face of Predictor: an app factory with a JSON and SSE API, named limits, and the drop-a-screenshot page."""
# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations, and Request is
# imported inside create_app (fastapi is the optional `serve` extra, kept off the CLI's import path).
import asyncio
import base64
import binascii
import concurrent.futures
import io
import json
import logging
import math
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

STATIC_DIR = Path(__file__).with_name("static")
log = logging.getLogger("i2h.serve")

# Magic numbers of the formats we take, and of a few we are often sent, for a message that names them.
ACCEPTED = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}  # WebP is RIFF....WEBP, checked apart
OFTEN_SENT = {b"GIF8": "a GIF", b"BM": "a BMP", b"%PDF": "a PDF", b"II*\x00": "a TIFF", b"MM\x00*": "a TIFF",
              b"<svg": "an SVG", b"<?xml": "an XML/SVG file"}
ACCEPTED_TYPES = ("image/png", "image/jpeg", "image/webp")

# The page's own policy. The preview is an `srcdoc` iframe, which inherits this policy, so inline styles
# must stay allowed for the generated page to look like anything; the page itself never puts generated
# markup into its own DOM (code is shown with textContent), so that costs nothing. app.js adds a stricter
# `default-src 'none'` policy inside every preview document as well: the two are enforced together.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; "
    "connect-src 'self'; frame-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Settings:
    """The server's named limits; `i2h serve` has a flag for each."""

    max_upload_bytes: int = 10 * 1024 * 1024  # one screenshot file; a full-page PNG is rarely past 5 MB
    # A decoded RGB copy is 3 bytes a pixel and every admitted request may hold one: 25 M px is 75 MB,
    # a 1280-wide page 19,500 px tall. The model only sees the page's top anyway.
    max_pixels: int = 25_000_000
    workers: int = 1  # generations at once; one model on CPU is best served one request at a time
    max_queue: int = 4  # admitted requests waiting for a worker; past that, 503 with Retry-After
    timeout_s: float = 120.0  # whole request, queueing included
    max_new_tokens_limit: int = 4096  # a caller may ask for fewer tokens, never more
    model_name: str = ""  # shown by /health and the page

    def __post_init__(self):
        for name, low in (("max_upload_bytes", 1), ("max_pixels", 1), ("workers", 1), ("max_queue", 0),
                          ("max_new_tokens_limit", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"{name}={getattr(self, name)}: must be {low} or more")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s={self.timeout_s}: must be more than 0 seconds")


class GenerateOptions(BaseModel):
    """How to decode; everything optional (the model's own generation settings fill the gaps)."""

    model_config = ConfigDict(extra="forbid")
    max_new_tokens: int | None = Field(None, ge=1, description="stop after this many tokens (capped by the server)")
    num_beams: int | None = Field(None, ge=1, le=8, description="beam search width; 1 for greedy")
    do_sample: bool = Field(False, description="sample instead of greedy or beam search")
    temperature: float = Field(1.0, gt=0, le=5)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="for sampling")


class GenerateJSON(GenerateOptions):
    """The JSON form of a request: the screenshot base64-encoded (a data: URL is fine too)."""

    image: str = Field(..., description="PNG, JPEG or WebP bytes, base64 (or a data: URL)")
    filename: str = Field("image", max_length=200, description="a name for messages")


class GenerateResponse(BaseModel):
    html: str = Field(..., description="a well-formed HTML document")
    tokens: int = Field(..., description="new tokens generated")
    seconds: float = Field(..., description="generation time, queueing excluded")
    truncated: bool = Field(..., description="hit the token limit: the page may be incomplete")
    loop_cut: bool = Field(False, description="a repetition loop was cut off")


class ErrorResponse(BaseModel):
    error: str


class ApiError(Exception):
    """A user-facing failure: status, a message naming the input and what to do, extra headers."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _mb(n: float) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def describe_validation(e: ValidationError) -> str:
    """Pydantic's errors as one line: `field: what is wrong; ...`."""
    parts = []
    for err in e.errors():
        where = ".".join(str(x) for x in err["loc"]) or "body"
        msg = "unknown option" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def sniff_type(data: bytes) -> str | None:
    """'PNG', 'JPEG', 'WebP', or None for anything else."""
    for magic, kind in ACCEPTED.items():
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return None


def check_image(data: bytes, name: str, settings: Settings) -> None:
    """The cheap checks, before a request takes a queue slot: size, type, pixels (from the header only)."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ApiError(422, f"`{name}`: empty upload; give a PNG, JPEG or WebP screenshot")
    if len(data) > settings.max_upload_bytes:
        raise ApiError(413, f"`{name}`: {_mb(len(data))} is over the upload limit of {_mb(settings.max_upload_bytes)}; "
                            "crop the screenshot or save it as JPEG or WebP")
    if sniff_type(data) is None:
        seen = next((what for magic, what in OFTEN_SENT.items() if data.lstrip()[:8].startswith(magic)), "not a PNG, JPEG or WebP image")
        raise ApiError(415, f"`{name}`: unsupported type ({seen}); give a PNG, JPEG or WebP screenshot")
    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            w, h = img.size
    except Image.DecompressionBombError:
        w = h = None
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ApiError(422, f"`{name}`: cannot read the image ({e.__class__.__name__}); the file may be truncated or corrupt") from None
    if w is None or w * h > settings.max_pixels:
        size = f"{w}x{h} is" if w else "has"
        raise ApiError(413, f"`{name}`: {size} too many pixels (the limit is {settings.max_pixels:,}); crop or downscale it")


def decode_base64(text: str, name: str) -> bytes:
    if text.startswith("data:"):
        head, _, text = text.partition(",")
        if ";base64" not in head:
            raise ApiError(422, f"`{name}`: the data: URL is not base64; send the image bytes base64-encoded")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, f"`{name}`: not valid base64; send the file's bytes base64-encoded in `image`") from None


class Gate:
    """Admission and the worker pool: `workers` generations run, `max_queue` wait, the rest get 503.

    A slot is held until the generation itself ends, not the HTTP response: a request that timed out or
    whose client left still occupies the CPU, and the queue must not pretend otherwise."""

    def __init__(self, workers: int, max_queue: int):
        self.workers, self.capacity = workers, workers + max_queue
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="i2h-generate")
        self._lock = threading.Lock()
        self.active = 0  # admitted, generation not yet over
        self.running = 0
        self.mean_seconds = 5.0  # a running mean of generation time, for Retry-After

    def admit(self, peek: bool = False) -> None:
        """Take a slot, or raise 503. With peek, only check: turning a request away before its body is
        read and parsed keeps an overloaded server's CPU for the requests it did admit."""
        with self._lock:
            if self.active >= self.capacity:
                wait = math.ceil(self.mean_seconds * (self.active - self.workers + 1) / self.workers)
                raise ApiError(503, f"the server is busy ({self.active} requests admitted, the limit is "
                                    f"{self.capacity}); retry in about {max(wait, 1)} s",
                               headers={"Retry-After": str(max(wait, 1))})
            if not peek:
                self.active += 1

    def _release(self) -> None:
        with self._lock:
            self.active -= 1

    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        """Run fn on a worker; an admitted slot must be released by exactly one of run() or cancel()."""

        def run():
            with self._lock:
                self.running += 1
            t0 = time.perf_counter()
            try:
                return fn()
            finally:
                with self._lock:
                    self.running -= 1
                    self.active -= 1
                    self.mean_seconds = 0.8 * self.mean_seconds + 0.2 * (time.perf_counter() - t0)

        return self.pool.submit(run)

    def cancel(self, fut: concurrent.futures.Future) -> None:
        """Give up on a request: if it never started, its slot is free at once."""
        if fut.cancel():
            self._release()

    def status(self) -> dict:
        with self._lock:
            return {"running": self.running, "waiting": self.active - self.running, "limit": self.capacity}


def _options_kwargs(opts: GenerateOptions, settings: Settings) -> dict:
    if opts.max_new_tokens is not None and opts.max_new_tokens > settings.max_new_tokens_limit:
        raise ApiError(422, f"max_new_tokens: {opts.max_new_tokens} is over this server's limit of "
                            f"{settings.max_new_tokens_limit}; ask for fewer")
    return opts.model_dump()


def _timeout_error(settings: Settings) -> ApiError:
    return ApiError(504, f"generation took longer than this server's limit of {settings.timeout_s:g} s; "
                         "try a smaller max_new_tokens, or retry when the server is less busy")


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def create_app(predictor, settings: Settings | None = None):
    """A FastAPI app around one loaded Predictor (or any object with its predict_full/stream)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException as StarletteHTTPException

    settings = settings or Settings()
    # Base64 is 4/3 of the bytes; the slack covers multipart headers and the option fields.
    body_limit = math.ceil(settings.max_upload_bytes * 4 / 3) + 64 * 1024
    gate = Gate(settings.workers, settings.max_queue)

    @asynccontextmanager
    async def lifespan(app):
        yield
        gate.pool.shutdown(wait=False, cancel_futures=True)

    # FastAPI's own /docs loads Swagger UI from a CDN; ours (static/docs.html) reads /openapi.json locally.
    app = FastAPI(title="i2h", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Screenshot in, HTML out. POST a PNG, JPEG or WebP screenshot to `/v1/generate`.")
    app.state.settings, app.state.gate, app.state.predictor = settings, gate, predictor

    @app.exception_handler(ApiError)
    async def _api_error(request, e: ApiError):
        return JSONResponse({"error": e.message}, status_code=e.status, headers=e.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, e):
        msg = {404: f"{request.url.path}: no such page; see /docs for the API",
               405: f"{request.method} {request.url.path}: method not allowed; see /docs"}.get(e.status_code, str(e.detail))
        return JSONResponse({"error": msg}, status_code=e.status_code, headers=getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, e):
        return JSONResponse({"error": "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())},
                            status_code=422)

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > body_limit:
            raise ApiError(413, f"request body of {_mb(int(declared))} is over the upload limit of "
                                f"{_mb(settings.max_upload_bytes)}; crop the screenshot or save it as JPEG or WebP")
        chunks, n = [], 0
        async for chunk in request.stream():  # counted as it arrives: Content-Length may be absent or false
            n += len(chunk)
            if n > body_limit:
                raise ApiError(413, f"request body is over the upload limit of {_mb(settings.max_upload_bytes)}; "
                                    "crop the screenshot or save it as JPEG or WebP")
            chunks.append(chunk)
        return b"".join(chunks)

    async def parse(request: Request) -> tuple[bytes, str, dict]:
        """Multipart or JSON -> (image bytes, a name for messages, generation kwargs); cheap checks done."""
        gate.admit(peek=True)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("multipart/form-data", "application/json"):
            raise ApiError(415, f"Content-Type {ctype or '(none)'}: send multipart/form-data with an `image` file "
                                "field, or application/json with `image` as base64")
        body = await read_body(request)
        if ctype == "application/json":
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError) as e:
                raise ApiError(422, f"request body is not valid JSON ({e}); send an object like "
                                    '{"image": "<base64>", "max_new_tokens": 512}') from None
            if not isinstance(data, dict):
                raise ApiError(422, 'request body must be a JSON object like {"image": "<base64>"}')
            try:
                req = GenerateJSON.model_validate(data)
            except ValidationError as e:
                raise ApiError(422, describe_validation(e)) from None
            name = req.filename
            image = decode_base64(req.image, name)
            fields = req.model_dump(exclude={"image", "filename"}, exclude_unset=True)
        else:
            async def replay():
                return {"type": "http.request", "body": body, "more_body": False}

            try:
                form = await Request(request.scope, replay).form(max_files=1, max_fields=16)
            except StarletteHTTPException as e:
                raise ApiError(422, f"malformed multipart body ({e.detail}); send one `image` file field") from None
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                what = "is text, not a file" if isinstance(upload, str) else "is missing"
                raise ApiError(422, f"the `image` file field {what}; send the screenshot as multipart field `image`")
            name = upload.filename or "image"
            image = await upload.read()
            fields = {k: v for k, v in form.multi_items() if k != "image"}
            await form.close()
        check_image(image, name, settings)
        try:
            opts = GenerateOptions.model_validate(fields)
        except ValidationError as e:
            raise ApiError(422, describe_validation(e)) from None
        return image, name, _options_kwargs(opts, settings)

    def load(image: bytes, name: str):
        from .images import ImageError, load_image

        try:
            return load_image(image, name=name, max_pixels=settings.max_pixels)
        except ImageError as e:
            raise ApiError(422, str(e)) from None

    def failure(e: BaseException) -> ApiError:
        if isinstance(e, ApiError):
            return e
        log.error("generation failed", exc_info=e)
        return ApiError(500, f"generation failed on the server ({e.__class__.__name__}); the server log has details")

    responses = {
        413: {"model": ErrorResponse, "description": "upload or image too large"},
        415: {"model": ErrorResponse, "description": "not a PNG, JPEG or WebP; or not multipart/JSON"},
        422: {"model": ErrorResponse, "description": "bad options or unreadable image"},
        503: {"model": ErrorResponse, "description": "queue full; see Retry-After"},
        504: {"model": ErrorResponse, "description": "over the time limit"},
    }
    options_schema = GenerateOptions.model_json_schema()
    form_schema = {"type": "object", "required": ["image"],
                   "properties": {"image": {"type": "string", "format": "binary"}, **options_schema["properties"]}}
    request_body = {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": form_schema},
        "application/json": {"schema": GenerateJSON.model_json_schema()}}}}

    @app.get("/health", summary="liveness, the model, the queue and the limits")
    async def health():
        return {"status": "ok", "model": settings.model_name, "queue": gate.status(),
                "limits": {k: v for k, v in asdict(settings).items() if k != "model_name"},
                "accepted_types": list(ACCEPTED_TYPES)}

    @app.post("/v1/generate", response_model=GenerateResponse, responses=responses, openapi_extra=request_body,
              summary="screenshot -> HTML, in one JSON answer")
    async def generate(request: Request):
        t0 = time.monotonic()
        image, name, kw = await parse(request)
        gate.admit()

        def work():
            pil = load(image, name)
            return predictor.predict_full([pil], **kw)[0]

        fut = gate.submit(work)
        waiting = asyncio.wrap_future(fut)
        try:
            # shield: a timeout must not look like a cancel to the worker; gate.cancel decides that.
            pred = await asyncio.wait_for(asyncio.shield(waiting), settings.timeout_s - (time.monotonic() - t0))
        except (asyncio.TimeoutError, asyncio.CancelledError) as e:
            gate.cancel(fut)
            # Nobody will read the late result; retrieving it keeps asyncio from logging it as lost.
            waiting.add_done_callback(lambda f: f.cancelled() or f.exception())
            if isinstance(e, asyncio.CancelledError):
                raise
            raise _timeout_error(settings) from None
        except Exception as e:
            raise failure(e) from None
        return GenerateResponse(html=pred.html, tokens=pred.tokens, seconds=round(pred.seconds, 4),
                                truncated=pred.truncated, loop_cut=pred.loop_cut)

    @app.post("/v1/generate/stream", responses=responses, openapi_extra=request_body,
              summary="screenshot -> HTML as server-sent events",
              description="Events: `status` ({state: queued|running}), `token` ({text}) as decoding goes, then "
                          "`done` (the same object as /v1/generate) or `error` ({error}).")
    async def generate_stream(request: Request):
        t0 = time.monotonic()
        image, name, kw = await parse(request)
        if kw.get("num_beams") not in (None, 1):
            raise ApiError(422, "num_beams: streaming decodes one hypothesis; use num_beams=1, or POST /v1/generate")
        gate.admit()
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        abandoned = threading.Event()  # the client left or the time ran out: stop sending, keep counting

        def push(item):
            if not abandoned.is_set():
                loop.call_soon_threadsafe(events.put_nowait, item)

        def work():
            push(("status", {"state": "running"}))
            pil = load(image, name)
            # Drained to the end even when nobody listens: generate runs on regardless, and the worker
            # slot must stay taken while it does.
            for piece in predictor.stream(pil, **kw):
                if isinstance(piece, str):
                    push(("token", {"text": piece}))
                else:
                    return piece

        fut = gate.submit(work)
        fut.add_done_callback(lambda f: push(("end", f)))

        async def body():
            try:
                yield _sse("status", {"state": "queued"})
                while True:
                    left = settings.timeout_s - (time.monotonic() - t0)
                    try:
                        kind, data = await asyncio.wait_for(events.get(), max(left, 0))
                    except asyncio.TimeoutError:
                        yield _sse("error", {"error": _timeout_error(settings).message})
                        return
                    if kind != "end":
                        yield _sse(kind, data)
                        continue
                    if data.cancelled():
                        return
                    if data.exception() is not None:
                        yield _sse("error", {"error": failure(data.exception()).message})
                        return
                    pred = data.result()
                    yield _sse("done", GenerateResponse(html=pred.html, tokens=pred.tokens,
                                                        seconds=round(pred.seconds, 4), truncated=pred.truncated,
                                                        loop_cut=pred.loop_cut).model_dump())
                    return
            finally:
                abandoned.set()
                gate.cancel(fut)

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return FileResponse(STATIC_DIR / "docs.html", media_type="text/html",
                            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _version() -> str:
    from . import __version__

    return __version__


def run(predictor, settings: Settings | None = None, host: str = "127.0.0.1", port: int = 8000,
        log_level: str = "info") -> None:
    """Serve a loaded Predictor with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(predictor, settings), host=host, port=port, log_level=log_level)
