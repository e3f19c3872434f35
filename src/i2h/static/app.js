// The i2h page: take a screenshot (drop, paste, pick), stream its HTML from /v1/generate/stream,
// show the code highlighted and the page rendered in a sandboxed iframe. Generated markup is never put
// into this page's DOM: code goes in as text nodes, the page only into the sandboxed iframe's srcdoc.
"use strict";

const $ = (sel) => document.querySelector(sel);
const ACCEPTED = ["image/png", "image/jpeg", "image/webp"];
// Added to every preview document on top of the inherited page policy: no requests at all, so a
// generated page cannot fetch, beacon or load a remote image (styles and data: images still work).
const PREVIEW_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; media-src data:";
let limits = { max_upload_bytes: 10 * 1024 * 1024 };
let current = null;   // {html, name} of the last finished result
let controller = null; // aborts the request in flight when a new screenshot arrives
let previewWidth = 1280, previewHeight = 800;

function setStatus(text, isError = false) {
  const el = $("#status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function setState(state) { document.body.dataset.state = state; }

// ---- a tiny HTML + CSS highlighter: builds spans with textContent, never parses the markup as HTML ----
function highlight(src) {
  const frag = document.createDocumentFragment();
  const add = (text, cls) => {
    if (!text) return;
    if (!cls) { frag.appendChild(document.createTextNode(text)); return; }
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    frag.appendChild(span);
  };
  const TAG = /<\/?([A-Za-z][^\s\/>]*)/y, WS = /\s+/y, NAME = /[^\s=\/>]+/y, EQ = /\s*=\s*/y,
        VAL = /"[^"]*"?|'[^']*'?|[^\s>]+/y, ENT = /&#?\w+;/g;
  const at = (re, i) => { re.lastIndex = i; const m = re.exec(src); return m ? m[0] : null; };
  const n = src.length;
  let i = 0;
  while (i < n) {
    if (src.startsWith("<!--", i)) {
      let j = src.indexOf("-->", i + 4); j = j < 0 ? n : j + 3;
      add(src.slice(i, j), "t-com"); i = j; continue;
    }
    if (src.startsWith("<!", i) || src.startsWith("<?", i)) {
      let j = src.indexOf(">", i); j = j < 0 ? n : j + 1;
      add(src.slice(i, j), "t-doc"); i = j; continue;
    }
    TAG.lastIndex = i;
    const tag = TAG.exec(src);
    if (tag) {
      add(tag[0], "t-tag"); i += tag[0].length;
      const closing = tag[0][1] === "/";
      while (i < n) {  // attributes up to the tag's end
        let m;
        if ((m = at(WS, i))) { add(m); i += m.length; continue; }
        if (src.startsWith("/>", i) || src[i] === ">") { const e = src[i] === ">" ? ">" : "/>"; add(e, "t-tag"); i += e.length; break; }
        if (src[i] === "/") { add("/", "t-punc"); i += 1; continue; }
        if ((m = at(NAME, i))) { add(m, "t-attr"); i += m.length;
          const eq = at(EQ, i);
          if (eq) { add(eq, "t-punc"); i += eq.length; const v = at(VAL, i); if (v) { add(v, "t-val"); i += v.length; } }
          continue; }
        add(src[i]); i += 1;
      }
      const name = tag[1].toLowerCase();
      if (!closing && (name === "style" || name === "script")) {  // raw text up to the closing tag
        const end = src.toLowerCase().indexOf("</" + name, i);
        const j = end < 0 ? n : end;
        if (name === "style") frag.appendChild(highlightCSS(src.slice(i, j))); else add(src.slice(i, j));
        i = j;
      }
      continue;
    }
    let j = src.indexOf("<", i + (src[i] === "<" ? 1 : 0));
    if (j < 0) j = n;
    const text = src.slice(i, j);
    let last = 0, m;
    ENT.lastIndex = 0;
    while ((m = ENT.exec(text))) { add(text.slice(last, m.index)); add(m[0], "t-ent"); last = m.index + m[0].length; }
    add(text.slice(last));
    i = j;
  }
  return frag;
}

function highlightCSS(css) {
  const frag = document.createDocumentFragment();
  const add = (text, cls) => {
    if (!text) return;
    const span = document.createElement("span");
    if (cls) span.className = cls;
    span.textContent = text;
    frag.appendChild(span);
  };
  let depth = 0, state = "prop", buf = "";
  const flush = (cls) => { add(buf, cls); buf = ""; };
  for (let i = 0; i < css.length; i++) {
    const c = css[i];
    if (c === "/" && css[i + 1] === "*") {
      flush(depth ? (state === "val" ? "t-val" : "t-prop") : "t-sel");
      let j = css.indexOf("*/", i + 2); j = j < 0 ? css.length : j + 2;
      add(css.slice(i, j), "t-com"); i = j - 1; continue;
    }
    if (c === "{") { flush("t-sel"); add(c, "t-punc"); depth++; state = "prop"; continue; }
    if (c === "}") { flush(state === "val" ? "t-val" : "t-prop"); add(c, "t-punc"); depth = Math.max(0, depth - 1); state = "prop"; continue; }
    if (depth && state === "prop" && c === ":") {
      // `a:hover {` inside @media is a selector, not a property: look at what ends this run
      const rest = css.slice(i).search(/[{;}]/);
      if (rest >= 0 && css[i + rest] === "{") { buf += c; continue; }
      flush("t-prop"); add(c, "t-punc"); state = "val"; continue;
    }
    if (depth && c === ";") { flush(state === "val" ? "t-val" : "t-prop"); add(c, "t-punc"); state = "prop"; continue; }
    buf += c;
  }
  flush(depth ? (state === "val" ? "t-val" : "t-prop") : "t-sel");
  return frag;
}

// ---- preview ----
function sandboxed(html) {
  // A meta refresh could still navigate the frame away; it has no use in a preview.
  html = html.replace(/<meta[^>]*http-equiv\s*=\s*["']?refresh[^>]*>/gi, "");
  const meta = `<meta http-equiv="Content-Security-Policy" content="${PREVIEW_CSP}">`;
  // First thing in the document (after a doctype, which must stay first to keep standards mode), so
  // the policy is in force before any element that could make a request is parsed.
  const doctype = /^\s*<!doctype[^>]*>/i.exec(html);
  return doctype ? doctype[0] + meta + html.slice(doctype[0].length) : meta + html;
}

function setPreview(html) { $("#preview").srcdoc = sandboxed(html); }

function layoutPreview() {
  const wrap = $("#frame-wrap"), frame = $("#preview");
  const scale = Math.min(1, (wrap.clientWidth - 2) / previewWidth);
  frame.style.width = previewWidth + "px";
  frame.style.height = previewHeight + "px";
  frame.style.transform = `scale(${scale})`;
  frame.style.left = Math.max(0, (wrap.clientWidth - previewWidth * scale) / 2) + "px";
  wrap.style.height = Math.ceil(previewHeight * scale) + "px";
}

// ---- code pane ----
function showCodeText(text, streaming) {
  const code = $("#code code");
  code.replaceChildren(document.createTextNode(text));
  $("#code").classList.toggle("streaming", streaming);
}

function showCodeFinal(html) {
  const code = $("#code code");
  code.replaceChildren(highlight(html));
  $("#code").classList.remove("streaming");
}

// ---- input ----
function takeFile(file) {
  if (!file) return;
  const name = file.name || "pasted image";
  if (!ACCEPTED.includes(file.type)) {
    setStatus(`${name}: unsupported type (${file.type || "unknown"}); give a PNG, JPEG or WebP screenshot`, true);
    setState("error");
    return;
  }
  if (file.size > limits.max_upload_bytes) {
    setStatus(`${name}: ${(file.size / 1048576).toFixed(1)} MB is over the upload limit of ` +
              `${(limits.max_upload_bytes / 1048576).toFixed(1)} MB; crop it or save it as JPEG or WebP`, true);
    setState("error");
    return;
  }
  const img = $("#input");
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(file);
  img.hidden = false;
  $("#input-empty").hidden = true;
  generate(file, name);
}

async function generate(file, name) {
  if (controller) controller.abort();
  controller = new AbortController();
  const signal = controller.signal;
  current = null;
  $("#copy").disabled = $("#download").disabled = true;
  $("#meta").textContent = "";
  showCodeText("", true);
  setPreview("");
  setState("uploading");
  setStatus(`Uploading ${name}…`);

  const form = new FormData();
  form.append("image", file, name);
  const maxTokens = $("#max-tokens").value.trim();
  if (maxTokens) form.append("max_new_tokens", maxTokens);

  let res;
  try {
    res = await fetch("/v1/generate/stream", { method: "POST", body: form, signal });
  } catch (e) {
    if (signal.aborted) return;
    setStatus(`Could not reach the server (${e.message}); is \`i2h serve\` still running?`, true);
    setState("error");
    return;
  }
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try { msg = (await res.json()).error || msg; } catch (e) { /* not JSON: keep the status line */ }
    setStatus(msg, true);
    setState("error");
    return;
  }

  let raw = "", lastPreview = 0;
  const textNode = document.createTextNode("");
  $("#code code").replaceChildren(textNode);
  const onEvent = (event, data) => {
    if (event === "status") {
      setState(data.state);
      setStatus(data.state === "queued" ? "Waiting for a free worker…" : "Generating…");
    } else if (event === "token") {
      raw += data.text;
      textNode.appendData(data.text);
      setStatus(`Generating… ${raw.length.toLocaleString()} characters`);
      const now = performance.now();
      if (now - lastPreview > 500) { lastPreview = now; setPreview(raw); }  // live, but not every token
    } else if (event === "done") {
      current = { html: data.html, name };
      showCodeFinal(data.html);
      setPreview(data.html);
      $("#copy").disabled = $("#download").disabled = false;
      $("#meta").textContent = `${data.tokens} tokens, ${data.seconds.toFixed(2)} s` +
        (data.truncated ? ", truncated" : "") + (data.loop_cut ? ", loop cut" : "");
      setStatus(data.truncated ? "Done, but the output hit the token limit: the page may be incomplete."
                               : "Done.");
      setState("done");
    } else if (event === "error") {
      setStatus(data.error, true);
      setState("error");
    }
  };

  try {
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        let event = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        onEvent(event, data ? JSON.parse(data) : {});
      }
    }
  } catch (e) {
    if (signal.aborted) return;
    setStatus(`The connection broke while generating (${e.message}); try again.`, true);
    setState("error");
    return;
  }
  if (document.body.dataset.state !== "done" && document.body.dataset.state !== "error") {
    setStatus("The server closed the stream before the result; try again.", true);
    setState("error");
  }
}

async function copyCode() {
  if (!current) return;
  try {
    await navigator.clipboard.writeText(current.html);
  } catch (e) {  // no clipboard permission: select the code so Ctrl+C works
    const range = document.createRange();
    range.selectNodeContents($("#code code"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    setStatus("Code selected: press Ctrl+C to copy it.");
    return;
  }
  setStatus("Copied the HTML to the clipboard.");
}

function downloadCode() {
  if (!current) return;
  const url = URL.createObjectURL(new Blob([current.html], { type: "text/html" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = current.name.replace(/\.[^.]*$/, "").replace(/[^\w.-]+/g, "_") + ".html";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function init() {
  const drop = $("#drop");
  ["dragenter", "dragover"].forEach((t) => document.addEventListener(t, (e) => {
    e.preventDefault(); drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((t) => document.addEventListener(t, (e) => {
    e.preventDefault(); drop.classList.remove("over");
  }));
  document.addEventListener("drop", (e) => takeFile(e.dataTransfer && e.dataTransfer.files[0]));
  document.addEventListener("paste", (e) => {
    const items = [...((e.clipboardData && e.clipboardData.items) || [])];
    const item = items.find((it) => it.kind === "file" && it.type.startsWith("image/"));
    if (item) { e.preventDefault(); takeFile(item.getAsFile()); }
  });
  $("#file").addEventListener("change", (e) => { takeFile(e.target.files[0]); e.target.value = ""; });
  $("#copy").addEventListener("click", copyCode);
  $("#download").addEventListener("click", downloadCode);
  document.querySelectorAll("button.width").forEach((b) => b.addEventListener("click", () => {
    document.querySelectorAll("button.width").forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
    previewWidth = +b.dataset.width; previewHeight = +b.dataset.height;
    layoutPreview();
  }));
  new ResizeObserver(layoutPreview).observe($("#frame-wrap"));
  layoutPreview();
  setState("idle");

  fetch("/health").then((r) => r.json()).then((h) => {
    limits = h.limits;
    if (h.model) $("#model").textContent = `model: ${h.model}`;
    $("#limits").textContent = `PNG, JPEG or WebP, up to ${(limits.max_upload_bytes / 1048576).toFixed(0)} MB ` +
      `and ${(limits.max_pixels / 1e6).toFixed(0)} M pixels.`;
  }).catch(() => setStatus("The server did not answer /health; is `i2h serve` running?", true));
}

document.addEventListener("DOMContentLoaded", init);
