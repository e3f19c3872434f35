// The API reference at /docs, drawn from /openapi.json with nothing from a CDN (FastAPI's default
// Swagger UI loads its code from jsdelivr, which an offline server cannot reach).
"use strict";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function resolve(spec, schema) {
  while (schema && schema.$ref) schema = spec.components.schemas[schema.$ref.split("/").pop()];
  return schema || {};
}

function typeOf(spec, s) {
  s = resolve(spec, s);
  if (s.anyOf) return s.anyOf.map((x) => typeOf(spec, x)).join(" | ");
  return (s.type || "object") + (s.format ? ` (${s.format})` : "");
}

function limitsOf(s) {
  const inner = (s.anyOf || []).find((x) => x.type !== "null") || {};  // `int | None`: limits sit inside
  s = { ...inner, ...s };
  const parts = [];
  for (const [k, sym] of [["minimum", "≥"], ["exclusiveMinimum", ">"], ["maximum", "≤"], ["exclusiveMaximum", "<"], ["maxLength", "length ≤"]]) {
    if (s[k] !== undefined) parts.push(`${sym} ${s[k]}`);
  }
  if (s.default !== undefined && s.default !== null) parts.push(`default ${JSON.stringify(s.default)}`);
  return parts.join(", ");
}

function schemaTable(spec, schema) {
  schema = resolve(spec, schema);
  const table = el("table", undefined, "schema");
  const head = table.insertRow();
  ["field", "type", "limits", "what"].forEach((h) => head.appendChild(el("th", h)));
  const required = new Set(schema.required || []);
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    const row = table.insertRow();
    row.insertCell().appendChild(el("code", name + (required.has(name) ? " *" : "")));
    row.insertCell().textContent = typeOf(spec, prop);
    row.insertCell().textContent = limitsOf(prop);
    row.insertCell().textContent = prop.description || "";
  }
  return table;
}

async function main() {
  const root = document.getElementById("docs");
  let spec;
  try {
    spec = await (await fetch("/openapi.json")).json();
  } catch (e) {
    root.replaceChildren(el("p", `Could not load /openapi.json (${e.message}).`, "status error"));
    return;
  }
  root.replaceChildren(el("p", spec.info.description || ""));
  root.appendChild(el("pre", 'curl -F image=@shot.png -F max_new_tokens=512 ' + location.origin + '/v1/generate\n' +
    'curl -N -F image=@shot.png ' + location.origin + '/v1/generate/stream', "code"));
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const sec = el("section", undefined, "pane op");
      sec.appendChild(el("h2", `${method.toUpperCase()} ${path}`));
      const body = el("div", undefined, "op-body");
      if (op.summary) body.appendChild(el("p", op.summary));
      if (op.description && op.description !== op.summary) body.appendChild(el("p", op.description, "muted"));
      const content = (op.requestBody && op.requestBody.content) || {};
      for (const [ctype, media] of Object.entries(content)) {
        body.appendChild(el("h3", `request: ${ctype}`));
        body.appendChild(schemaTable(spec, media.schema));
      }
      const codes = el("ul");
      for (const [code, resp] of Object.entries(op.responses || {})) codes.appendChild(el("li", `${code}: ${resp.description}`));
      body.appendChild(el("h3", "responses (errors are {\"error\": message})"));
      body.appendChild(codes);
      sec.appendChild(body);
      root.appendChild(sec);
    }
  }
}

document.addEventListener("DOMContentLoaded", main);
