// @ts-check
/**
 * The API reference page (`/docs`): turns the hub's OpenAPI 3.1 document into HTML. Pure
 * functions, no DOM: every renderer takes the spec (or the model built from it) and returns an
 * `Html` value, so the rules are unit-tested in node (`web/test/docs.test.js`) and `docs.js`
 * only fetches, inserts and filters.
 *
 * Safety: the document is data, never markup. Every string from it goes through `escapeHtml`
 * (the `html` tag escapes every interpolated value unless it is itself `Html` built here), so
 * a `<script>` in a description shows as text. Links are only built to anchors of this page
 * (ids made of `[A-Za-z0-9_-]`) or to `http(s):` URLs.
 */

/** @typedef {Record<string, any>} Json  a JSON object of the document (untrusted shape) */

/** Markup built by this module: trusted, inserted as is by `html`. */
export class Html {
  /** @param {string} value */
  constructor(value) {
    this.value = value;
  }
  toString() {
    return this.value;
  }
}

/** @typedef {Html | string | number | boolean | null | undefined | unknown[]} HtmlValue  arrays: of `HtmlValue`s */

const ESCAPES = /** @type {Record<string, string>} */ ({
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
});

/**
 * Escapes text for an HTML text node or a quoted attribute value.
 * @param {unknown} value
 * @returns {string}
 */
export function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/**
 * @param {HtmlValue} value
 * @returns {string}
 */
function part(value) {
  if (value instanceof Html) return value.value;
  if (Array.isArray(value)) return value.map((v) => part(/** @type {HtmlValue} */ (v))).join("");
  if (value == null || value === false || value === true) return "";
  return escapeHtml(value);
}

/**
 * Template tag: the literal parts are markup, every `${value}` is escaped text unless it is
 * `Html` (or an array of values, joined). `null`, `undefined` and booleans render nothing.
 * @param {TemplateStringsArray} strings
 * @param {...HtmlValue} values
 * @returns {Html}
 */
export function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i += 1) out += part(values[i]) + strings[i + 1];
  return new Html(out);
}

/**
 * @param {HtmlValue[]} items
 * @param {string} separator  markup
 * @returns {Html}
 */
function join(items, separator) {
  return new Html(items.map(part).join(separator));
}

// --- reading the document -------------------------------------------------------------------

/**
 * @param {unknown} value
 * @returns {value is Json}
 */
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * @param {unknown} value
 * @returns {Json}
 */
function obj(value) {
  return isObject(value) ? value : {};
}

/**
 * @param {unknown} value
 * @returns {string}
 */
function str(value) {
  return typeof value === "string" ? value : "";
}

/**
 * @param {unknown} value
 * @returns {any[]}
 */
function arr(value) {
  return Array.isArray(value) ? value : [];
}

/** The HTTP methods of a path item, in the order the page lists them. */
export const METHODS = ["get", "put", "post", "patch", "delete", "head", "options", "trace"];

const SCHEMA_PREFIX = "#/components/schemas/";

/**
 * Decodes one JSON Pointer segment (`~1` is `/`, `~0` is `~`, then percent-decoding).
 * @param {string} segment
 */
function pointerSegment(segment) {
  let s = segment.replace(/~1/g, "/").replace(/~0/g, "~");
  try {
    s = decodeURIComponent(s);
  } catch {
    // not percent-encoded: as is
  }
  return s;
}

/**
 * Follows a local `$ref` (`#/components/schemas/X`, `#/components/responses/Y`, …) in the
 * document. `undefined` for a remote or dangling reference.
 * @param {Json} spec
 * @param {unknown} ref
 * @returns {any}
 */
export function resolveRef(spec, ref) {
  if (typeof ref !== "string" || !ref.startsWith("#")) return undefined;
  if (ref === "#") return spec;
  if (!ref.startsWith("#/")) return undefined;
  /** @type {any} */
  let node = spec;
  for (const segment of ref.slice(2).split("/")) {
    const key = pointerSegment(segment);
    if (!isObject(node) && !Array.isArray(node)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(node, key)) return undefined;
    node = /** @type {any} */ (node)[key];
  }
  return node;
}

/**
 * An object that may be a `$ref` (a parameter, a response, a request body): the object it
 * stands for, following at most a few references in a row.
 * @param {Json} spec
 * @param {unknown} value
 * @returns {Json}
 */
export function deref(spec, value) {
  let node = value;
  for (let i = 0; i < 10 && isObject(node) && typeof node.$ref === "string"; i += 1) {
    node = resolveRef(spec, node.$ref);
  }
  return obj(node);
}

/**
 * The component schema a `$ref` names (`#/components/schemas/ExamView` → `ExamView`), or null.
 * @param {unknown} ref
 * @returns {string | null}
 */
export function schemaRefName(ref) {
  if (typeof ref !== "string" || !ref.startsWith(SCHEMA_PREFIX)) return null;
  const rest = ref.slice(SCHEMA_PREFIX.length);
  if (!rest || rest.includes("/")) return null;
  return pointerSegment(rest);
}

/**
 * @param {unknown} schema
 * @returns {boolean}
 */
function isNullSchema(schema) {
  if (!isObject(schema)) return false;
  if (schema.type === "null") return true;
  if (Array.isArray(schema.type) && schema.type.length > 0 && schema.type.every((t) => t === "null")) return true;
  if ("const" in schema && schema.const === null) return true;
  return Array.isArray(schema.enum) && schema.enum.length === 1 && schema.enum[0] === null;
}

/**
 * Whether a schema admits `null`: `type: [x, "null"]`, `oneOf`/`anyOf` with a null branch,
 * `null` among its `enum`, or OpenAPI 3.0's `nullable: true`.
 * @param {unknown} schema
 * @returns {boolean}
 */
export function isNullable(schema) {
  if (!isObject(schema)) return false;
  if (schema.nullable === true) return true;
  if (Array.isArray(schema.type) && schema.type.includes("null")) return true;
  if (Array.isArray(schema.enum) && schema.enum.includes(null)) return true;
  for (const key of ["oneOf", "anyOf"]) {
    if (arr(schema[key]).some(isNullSchema)) return true;
  }
  return false;
}

/** @typedef {{ value: unknown, description: string, status?: string }} EnumValue  `status`: the HTTP status an error code comes with, when its description says */

/**
 * The values a schema allows, when it is an enumeration: `enum` (null left out: see
 * `isNullable`), or a `oneOf` whose branches are each one `const` / one-value `enum` (each with
 * its own description). Descriptions also come from `x-enum-descriptions` /
 * `x-enumDescriptions` (an array in the order of `enum`, or an object by value). Empty when the
 * schema is not an enumeration.
 * @param {unknown} schema
 * @returns {EnumValue[]}
 */
export function enumValues(schema) {
  if (!isObject(schema)) return [];
  const extra = schema["x-enum-descriptions"] ?? schema["x-enumDescriptions"];
  if (Array.isArray(schema.enum)) {
    return schema.enum
      .map((value, i) => ({ value, i }))
      .filter(({ value }) => value !== null)
      .map(({ value, i }) => ({
        value,
        description: Array.isArray(extra)
          ? str(extra[i])
          : isObject(extra)
            ? str(extra[String(value)])
            : "",
      }));
  }
  for (const key of ["oneOf", "anyOf"]) {
    const branches = arr(schema[key]).filter((b) => !isNullSchema(b));
    if (branches.length === 0) continue;
    /** @type {EnumValue[]} */
    const out = [];
    for (const branch of branches) {
      if (!isObject(branch)) return [];
      const desc = str(branch.description) || str(branch.title);
      if ("const" in branch) {
        out.push({ value: branch.const, description: desc });
      } else if (Array.isArray(branch.enum) && branch.enum.length > 0 && !branch.properties) {
        // utoipa writes a documented unit variant as `{type: "string", enum: ["X"], description}`.
        for (const value of branch.enum) {
          if (value !== null) out.push({ value, description: branch.enum.length === 1 ? desc : "" });
        }
      } else {
        return [];
      }
    }
    return out;
  }
  return [];
}

// --- ids ------------------------------------------------------------------------------------

/**
 * A fragment-safe id part: letters, digits, `_` and `-` only.
 * @param {string} text
 */
export function slug(text) {
  const s = text
    .replace(/[{}]/g, "")
    .replace(/[^A-Za-z0-9_-]+/g, "-")
    .replace(/-{2,}/g, "-")
    .replace(/^-|-$/g, "");
  return s || "x";
}

/** Ids the page itself uses (docs.html, the fixed sections): never given to generated parts. */
const RESERVED_IDS = [
  "main",
  "docs-nav",
  "docs-nav-title",
  "docs-filter",
  "docs-filter-hint",
  "docs-filter-status",
  "docs-toc",
  "docs-toc-list",
  "docs-no-match",
  "overview",
  "overview-title",
  "authentication",
  "authentication-title",
  "errors",
  "errors-title",
  "error-codes-title",
  "schemas",
  "schemas-title",
];

class IdSet {
  constructor() {
    /** @type {Set<string>} */
    this.used = new Set(RESERVED_IDS);
  }
  /** @param {string} base */
  take(base) {
    let id = base;
    for (let n = 2; this.used.has(id) || this.used.has(`${id}-title`); n += 1) id = `${base}-${n}`;
    this.used.add(id);
    this.used.add(`${id}-title`);
    return id;
  }
}

// --- the model ------------------------------------------------------------------------------

/**
 * @typedef {object} Operation
 * @property {string} id        the anchor of its section
 * @property {string} method    upper case: `GET`
 * @property {string} path
 * @property {Json} op          the operation object
 * @property {Json[]} parameters  path-level and operation parameters, resolved (the operation's win)
 * @property {string[]} tags
 * @property {string} summary
 * @property {string} searchText  what the filter looks in, lower case
 */

/**
 * @typedef {object} TagGroup
 * @property {string} id
 * @property {string} name     the tag, or `UNTAGGED` for operations without one
 * @property {string} description
 * @property {Operation[]} operations
 */

/**
 * @typedef {object} ErrorInfo
 * @property {string | null} body       the component schema of error responses
 * @property {string | null} codesName  the component schema of the error codes, if it is one
 * @property {Json | null} codesSchema
 * @property {EnumValue[]} codes
 * @property {string} codesDescription  the codes schema's description, less the lines that
 *   described single codes (those went to `codes`)
 */

/**
 * @typedef {object} Model
 * @property {Json} spec
 * @property {Operation[]} operations  in document order
 * @property {TagGroup[]} groups       declared tags first, then others, then untagged
 * @property {Map<string, string>} schemaIds  component schema name → anchor
 * @property {ErrorInfo} errors
 */

/** The group name of operations without a tag. */
export const UNTAGGED = "Other operations";

/**
 * Every operation of the document, in the order of `paths` and then `METHODS`.
 * @param {Json} spec
 * @param {IdSet} [ids]
 * @returns {Operation[]}
 */
export function collectOperations(spec, ids = new IdSet()) {
  /** @type {Operation[]} */
  const out = [];
  for (const [path, rawItem] of Object.entries(obj(spec.paths))) {
    const item = deref(spec, rawItem);
    const shared = arr(item.parameters).map((p) => deref(spec, p));
    for (const method of METHODS) {
      if (!isObject(item[method])) continue;
      const op = item[method];
      /** @type {Map<string, Json>} */
      const params = new Map();
      for (const p of [...shared, ...arr(op.parameters).map((p) => deref(spec, p))]) {
        params.set(`${str(p.in)}:${str(p.name)}`, p);
      }
      const tags = arr(op.tags).filter((t) => typeof t === "string" && t !== "");
      const summary = str(op.summary);
      const operationId = str(op.operationId);
      out.push({
        // method and path, not operationId: utoipa names operations after their handler
        // functions, so `list` may stand for several
        id: ids.take(`op-${slug(`${method}-${path}`)}`),
        method: method.toUpperCase(),
        path,
        op,
        parameters: [...params.values()],
        tags,
        summary,
        searchText: [method, path, summary, operationId, ...tags].join("\n").toLowerCase(),
      });
    }
  }
  return out;
}

/**
 * Groups operations by their first tag: the document's `tags` in their order, then tags only
 * operations name (first seen first), then `UNTAGGED`. Empty groups are left out.
 * @param {Json} spec
 * @param {Operation[]} operations
 * @param {IdSet} [ids]
 * @returns {TagGroup[]}
 */
export function groupByTag(spec, operations, ids = new IdSet()) {
  /** @type {Map<string, Operation[]>} */
  const byTag = new Map();
  /** @type {Operation[]} */
  const untagged = [];
  for (const op of operations) {
    const tag = op.tags[0];
    if (tag === undefined) {
      untagged.push(op);
      continue;
    }
    const list = byTag.get(tag);
    if (list) list.push(op);
    else byTag.set(tag, [op]);
  }
  /** @type {Map<string, string>} */
  const descriptions = new Map();
  const declared = [];
  for (const t of arr(spec.tags)) {
    if (!isObject(t) || typeof t.name !== "string" || descriptions.has(t.name)) continue;
    descriptions.set(t.name, str(t.description));
    declared.push(t.name);
  }
  const names = [...declared, ...[...byTag.keys()].filter((n) => !descriptions.has(n))];
  /** @type {TagGroup[]} */
  const groups = [];
  for (const name of names) {
    const list = byTag.get(name);
    if (!list) continue;
    groups.push({ id: ids.take(`tag-${slug(name)}`), name, description: descriptions.get(name) ?? "", operations: list });
  }
  if (untagged.length > 0) {
    groups.push({ id: ids.take("tag-untagged"), name: UNTAGGED, description: "", operations: untagged });
  }
  return groups;
}

/**
 * @param {Json} spec
 * @param {unknown} schema
 * @param {(schema: Json) => boolean} test
 * @param {number} depth
 * @returns {Json | null}  the first schema on the way (following `$ref`s, composition and
 *   properties) that passes `test`
 */
function findSchema(spec, schema, test, depth = 0) {
  if (!isObject(schema) || depth > 6) return null;
  if (test(schema)) return schema;
  if (typeof schema.$ref === "string") return findSchema(spec, resolveRef(spec, schema.$ref), test, depth + 1);
  for (const key of ["allOf", "oneOf", "anyOf"]) {
    for (const s of arr(schema[key])) {
      const found = findSchema(spec, s, test, depth + 1);
      if (found) return found;
    }
  }
  for (const p of Object.values(obj(schema.properties))) {
    const found = findSchema(spec, p, test, depth + 1);
    if (found) return found;
  }
  return null;
}

/**
 * Parses the lines of a description that describe one code each (`- \`CODE\` (409): what it
 * means`, `CODE — what it means`, `* CODE: …`); the parenthesis, if any, is the HTTP status.
 * @param {string} description
 * @param {Set<string>} known  the codes of the enum: only these lines are taken
 * @returns {{ described: Map<string, { text: string, status: string }>, rest: string }}
 */
export function codeDescriptions(description, known) {
  /** @type {Map<string, { text: string, status: string }>} */
  const described = new Map();
  const rest = [];
  for (const line of description.split("\n")) {
    const m = /^\s*(?:[-*•]\s*)?`?([A-Z][A-Z0-9_]*)`?\s*(?:\(([^)]*)\))?\s*(?::|—|–|-|=)\s*(.+?)\s*$/.exec(line);
    if (m && known.has(m[1]) && !described.has(m[1])) {
      described.set(m[1], { text: m[3], status: (m[2] ?? "").trim() });
    } else {
      rest.push(line);
    }
  }
  return { described, rest: rest.join("\n").replace(/\n{3,}/g, "\n\n").trim() };
}

/**
 * Finds the error body and its codes: the body is the component schema most 4xx/5xx responses
 * carry (else one named like `ErrorBody`); the codes are the `ErrorCode` component (else any
 * `*ErrorCode*` enum, else the enum of the body's `code` property).
 * @param {Json} spec
 * @returns {ErrorInfo}
 */
export function findErrors(spec) {
  const schemas = obj(obj(spec.components).schemas);
  const names = Object.keys(schemas);
  /** @type {Map<string, number>} */
  const counts = new Map();
  for (const item of Object.values(obj(spec.paths))) {
    for (const method of METHODS) {
      const op = obj(deref(spec, item)[method]);
      for (const [status, raw] of Object.entries(obj(op.responses))) {
        if (!/^[45]/.test(status)) continue;
        for (const media of Object.values(obj(deref(spec, raw).content))) {
          const name = schemaRefName(obj(obj(media).schema).$ref);
          if (name && name in schemas) counts.set(name, (counts.get(name) ?? 0) + 1);
        }
      }
    }
  }
  /** @type {string | null} */
  let body = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
  if (!body) {
    const preferred = ["ErrorBody", "ErrorResponse", "ApiError", "Error"];
    body = preferred.find((n) => n in schemas) ?? names.find((n) => /error/i.test(n) && !/code/i.test(n) && isObject(schemas[n]) && (schemas[n].properties || schemas[n].allOf)) ?? null;
  }
  /** @type {string | null} */
  let codesName = null;
  /** @type {Json | null} */
  let codesSchema = null;
  if ("ErrorCode" in schemas) codesName = "ErrorCode";
  else codesName = names.find((n) => /error_?codes?$/i.test(n) && enumValues(schemas[n]).length > 0) ?? null;
  if (codesName) {
    codesSchema = obj(schemas[codesName]);
  } else if (body) {
    /** @param {Json} s */
    const hasCodeEnum = (s) => isObject(s.properties) && "code" in s.properties;
    const holder = findSchema(spec, schemas[body], hasCodeEnum);
    if (holder) {
      const code = holder.properties.code;
      const name = schemaRefName(obj(code).$ref);
      if (name && name in schemas) {
        codesName = name;
        codesSchema = obj(schemas[name]);
      } else if (enumValues(code).length > 0) {
        codesSchema = obj(code);
      }
    }
  }
  let codes = codesSchema ? enumValues(codesSchema) : [];
  let codesDescription = codesSchema ? str(codesSchema.description) : "";
  if (codes.length > 0 && codesDescription) {
    const { described, rest } = codeDescriptions(codesDescription, new Set(codes.map((c) => String(c.value))));
    if (described.size > 0) {
      codes = codes.map((c) => {
        const found = described.get(String(c.value));
        return { value: c.value, description: c.description || found?.text || "", status: found?.status ?? "" };
      });
      codesDescription = rest;
    }
  }
  return { body, codesName, codesSchema, codes, codesDescription };
}

/**
 * Everything the page shows, with the anchors of every part.
 * @param {unknown} spec  the parsed `openapi.json`
 * @returns {Model}
 */
export function buildModel(spec) {
  if (!isObject(spec) || (typeof spec.openapi !== "string" && typeof spec.swagger !== "string")) {
    throw new Error("This is not an OpenAPI document.");
  }
  const ids = new IdSet();
  /** @type {Map<string, string>} */
  const schemaIds = new Map();
  for (const name of Object.keys(obj(obj(spec.components).schemas))) {
    schemaIds.set(name, ids.take(`schema-${slug(name)}`));
  }
  const operations = collectOperations(spec, ids);
  const groups = groupByTag(spec, operations, ids);
  return { spec, operations, groups, schemaIds, errors: findErrors(spec) };
}

// --- the filter -----------------------------------------------------------------------------

/**
 * Whether an operation matches what was typed: every word of the query appears in its path,
 * summary, tags, method or operation id (case-insensitive). An empty query matches everything.
 * @param {Operation} operation
 * @param {string} query
 */
export function matchesQuery(operation, query) {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  return words.every((w) => operation.searchText.includes(w));
}

/**
 * What the filter leaves visible.
 * @param {Model} model
 * @param {string} query
 * @returns {{ operations: Set<string>, groups: Set<string>, shown: number, total: number }}
 */
export function filterOperations(model, query) {
  const operations = new Set();
  const groups = new Set();
  for (const group of model.groups) {
    for (const op of group.operations) {
      if (!matchesQuery(op, query)) continue;
      operations.add(op.id);
      groups.add(group.id);
    }
  }
  return { operations, groups, shown: operations.size, total: model.operations.length };
}

/**
 * The filter's status line.
 * @param {{ shown: number, total: number }} result
 * @param {string} query
 */
export function filterStatus(result, query) {
  const ops = (/** @type {number} */ n) => `${n} operation${n === 1 ? "" : "s"}`;
  if (!query.trim()) return `${ops(result.total)}.`;
  if (result.shown === 0) return `No operation matches “${query.trim()}”.`;
  return `${result.shown} of ${ops(result.total)} shown.`;
}

// --- text -----------------------------------------------------------------------------------

/**
 * @param {string} escaped  escaped text
 * @returns {string}
 */
function inline(escaped) {
  return escaped
    .replace(/\[`([^`\]]+)`\]/g, "`$1`") // rustdoc intra-doc links: [`Name`]
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
}

/**
 * A description as paragraphs and bullet lists, with `code` and **bold**: the little Markdown
 * that doc comments use. The text is escaped first; only those few tags are added.
 * @param {unknown} text
 * @returns {Html}
 */
export function renderText(text) {
  const source = str(text).replace(/\r\n?/g, "\n").trim();
  if (!source) return new Html("");
  const out = [];
  for (const block of source.split(/\n\s*\n/)) {
    const lines = block.split("\n");
    if (/^\s*[-*]\s+/.test(lines[0])) {
      /** @type {string[]} */
      const items = [];
      for (const line of lines) {
        const m = /^\s*[-*]\s+(.*)$/.exec(line);
        if (m) items.push(m[1]);
        else if (items.length > 0) items[items.length - 1] += ` ${line.trim()}`;
      }
      out.push(`<ul>${items.map((i) => `<li>${inline(escapeHtml(i))}</li>`).join("")}</ul>`);
    } else {
      out.push(`<p>${inline(escapeHtml(lines.map((l) => l.trim()).join(" ")))}</p>`);
    }
  }
  return new Html(out.join(""));
}

/**
 * A short text on one line (no paragraphs), with `code` and **bold**, escaped first.
 * @param {unknown} text
 * @returns {Html}
 */
export function renderInline(text) {
  return new Html(inline(escapeHtml(str(text).replace(/\s+/g, " ").trim())));
}

/**
 * A JSON value as shown in the page (examples, enum values, defaults).
 * @param {unknown} value
 */
export function jsonText(value) {
  if (value === undefined) return "";
  try {
    return JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * @param {unknown} value
 * @returns {Html}
 */
function code(value) {
  return html`<code>${String(value)}</code>`;
}

/**
 * @param {unknown} url
 * @returns {string | null}
 */
function safeUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

// --- schemas --------------------------------------------------------------------------------

/**
 * A link to a component schema's entry, or the reference as code when it names none.
 * @param {Model} model
 * @param {string} ref
 * @returns {Html}
 */
export function schemaLink(model, ref) {
  const name = schemaRefName(ref);
  const id = name === null ? undefined : model.schemaIds.get(name);
  if (name === null || id === undefined) return code(ref);
  return html`<a class="schema-link" href="#${id}"><code>${name}</code></a>`;
}

/**
 * A schema's type on one line: `string (date-time)`, `array of ExamView` (linked),
 * `string | null`, `map of string to integer`, `"DRAFT"`.
 * @param {Model} model
 * @param {unknown} schema
 * @param {number} [depth]
 * @returns {Html}
 */
export function typeHtml(model, schema, depth = 0) {
  if (schema === true || (isObject(schema) && Object.keys(schema).length === 0)) return html`any`;
  if (!isObject(schema)) return html`never`;
  if (depth > 8) return html`…`;
  if (typeof schema.$ref === "string") return schemaLink(model, schema.$ref);
  const nullable = isNullable(schema);
  const orNull = nullable ? html` | null` : "";
  if ("const" in schema) return code(JSON.stringify(schema.const));
  for (const key of ["oneOf", "anyOf"]) {
    const branches = arr(schema[key]).filter((b) => !isNullSchema(b));
    if (branches.length > 0) {
      const values = enumValues(schema);
      if (values.length > 0) return html`${join(values.map((v) => code(jsonText(v.value))), " | ")}${orNull}`;
      return html`${join(branches.map((b) => typeHtml(model, b, depth + 1)), " | ")}${orNull}`;
    }
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length > 0) {
    return html`${join(schema.allOf.map((b) => typeHtml(model, b, depth + 1)), " &amp; ")}${orNull}`;
  }
  const types = (Array.isArray(schema.type) ? schema.type : [schema.type]).filter(
    (t) => typeof t === "string" && t !== "null",
  );
  if (types.length === 0) {
    if (schema.properties) types.push("object");
    else if (schema.items) types.push("array");
    else if (Array.isArray(schema.enum)) {
      return html`${join(enumValues(schema).map((v) => code(jsonText(v.value))), " | ")}${orNull}`;
    }
  }
  if (types.length === 0) return nullable ? html`null` : html`any`;
  const parts = types.map((t) => {
    if (t === "array") {
      return schema.items === undefined ? html`array` : html`array of ${typeHtml(model, schema.items, depth + 1)}`;
    }
    if (t === "object" && !schema.properties && isObject(schema.additionalProperties)) {
      return html`map of string to ${typeHtml(model, schema.additionalProperties, depth + 1)}`;
    }
    const format = str(schema.format) || str(schema.contentMediaType);
    return format ? html`${t} (${format})` : html`${t}`;
  });
  return html`${join(parts, " | ")}${orNull}`;
}

/**
 * The facts of a schema that are not its type: allowed values (unless `withValues` is false:
 * a table shows them), default, bounds, flags.
 * @param {Json} schema
 * @param {boolean} [withValues]
 * @returns {Html[]}
 */
function schemaFacts(schema, withValues = true) {
  const facts = [];
  const values = enumValues(schema);
  if (withValues && values.length > 0 && !(Array.isArray(schema.oneOf) || Array.isArray(schema.anyOf))) {
    facts.push(html`One of: ${join(values.map((v) => code(jsonText(v.value))), ", ")}.`);
  }
  if ("default" in schema) facts.push(html`Default: ${code(jsonText(schema.default))}.`);
  /** @type {[string, string][]} */
  const bounds = [
    ["minimum", "Minimum"],
    ["exclusiveMinimum", "More than"],
    ["maximum", "Maximum"],
    ["exclusiveMaximum", "Less than"],
    ["minLength", "Minimum length"],
    ["maxLength", "Maximum length"],
    ["minItems", "Minimum items"],
    ["maxItems", "Maximum items"],
  ];
  for (const [key, words] of bounds) {
    if (typeof schema[key] === "number") facts.push(html`${words}: ${schema[key]}.`);
  }
  if (typeof schema.pattern === "string") facts.push(html`Pattern: ${code(schema.pattern)}.`);
  if (schema.uniqueItems === true) facts.push(html`Items are unique.`);
  if (schema.readOnly === true) facts.push(html`Read-only (in responses only).`);
  if (schema.writeOnly === true) facts.push(html`Write-only (in requests only).`);
  if (schema.deprecated === true) facts.push(html`<strong>Deprecated.</strong>`);
  return facts;
}

/**
 * An example value, as a labelled block.
 * @param {unknown} value
 * @param {string} [label]
 * @returns {Html}
 */
export function renderExample(value, label = "Example") {
  return html`<div class="example"><p class="example-label">${label}</p><pre><code>${jsonText(value)}</code></pre></div>`;
}

/**
 * The examples a schema, parameter or media type carries: `example`, 3.1's `examples` array
 * (schemas) or the `examples` map of named Example objects (parameters, media types).
 * @param {Json} spec
 * @param {Json} holder
 * @returns {Html[]}
 */
function examplesOf(spec, holder) {
  const out = [];
  if ("example" in holder) out.push(renderExample(holder.example));
  if (Array.isArray(holder.examples)) {
    holder.examples.forEach((value, i) =>
      out.push(renderExample(value, holder.examples.length > 1 ? `Example ${i + 1}` : "Example")),
    );
  } else if (isObject(holder.examples)) {
    for (const [name, raw] of Object.entries(holder.examples)) {
      const ex = deref(spec, raw);
      if (!("value" in ex)) continue;
      const label = str(ex.summary) ? `Example “${name}”: ${str(ex.summary)}` : `Example “${name}”`;
      out.push(html`${renderExample(ex.value, label)}${renderText(ex.description)}`);
    }
  }
  return out;
}

/**
 * @typedef {object} PropertyRow
 * @property {string} name        dotted for nested inline objects: `error.code`, `items[].id`
 * @property {Html} type
 * @property {boolean} required
 * @property {boolean} nullable
 * @property {Html} description   the description, allowed values and other facts
 */

/**
 * The property rows of an object schema, nested inline objects flattened with dotted names.
 * Members of `allOf` that are references are not expanded (they are linked by the caller).
 * @param {Model} model
 * @param {unknown} schema
 * @param {string} [prefix]
 * @param {number} [depth]
 * @param {number} [expand]  how many levels of properties that `$ref` an object schema to
 *   show inline as well (the error body shows `error.code`, `error.message`)
 * @returns {PropertyRow[]}
 */
export function propertyRows(model, schema, prefix = "", depth = 0, expand = 0) {
  if (!isObject(schema) || depth > 5) return [];
  /** @type {PropertyRow[]} */
  const rows = [];
  for (const member of arr(schema.allOf)) {
    if (isObject(member) && typeof member.$ref !== "string") rows.push(...propertyRows(model, member, prefix, depth + 1, expand));
  }
  const required = new Set(arr(schema.required));
  for (const [name, raw] of Object.entries(obj(schema.properties))) {
    const prop = isObject(raw) ? raw : {};
    const full = `${prefix}${name}`;
    const facts = schemaFacts(prop);
    const examples = "example" in prop ? [html`Example: ${code(jsonText(prop.example))}.`] : [];
    if (Array.isArray(prop.examples) && prop.examples.length > 0) {
      examples.push(html`Example: ${code(jsonText(prop.examples[0]))}.`);
    }
    const extras = [...facts, ...examples];
    rows.push({
      name: full,
      type: typeHtml(model, prop),
      required: required.has(name),
      nullable: isNullable(prop),
      description: html`${renderText(prop.description ?? prop.title)}${extras.length > 0 ? html`<p class="facts-line">${join(extras, " ")}</p>` : ""}`,
    });
    if (typeof prop.$ref !== "string") {
      if (isObject(prop.properties) || Array.isArray(prop.allOf)) {
        rows.push(...propertyRows(model, prop, `${full}.`, depth + 1, expand));
      } else if (isObject(prop.items) && typeof prop.items.$ref !== "string" && isObject(prop.items.properties)) {
        rows.push(...propertyRows(model, prop.items, `${full}[].`, depth + 1, expand));
      }
    } else if (expand > 0) {
      const target = resolveRef(model.spec, prop.$ref);
      if (isObject(target) && isObject(target.properties)) {
        rows.push(...propertyRows(model, target, `${full}.`, depth + 1, expand - 1));
      }
    }
  }
  return rows;
}

/**
 * @param {PropertyRow[]} rows
 * @param {string} caption
 * @returns {Html}
 */
export function renderPropertyTable(rows, caption) {
  return html`<table class="table docs-table props">
<caption class="visually-hidden">${caption}</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Required</th><th scope="col">Description</th></tr></thead>
<tbody>${rows.map(
    (r) => html`<tr><th scope="row" data-label="Name"><code>${r.name}</code></th><td data-label="Type">${r.type}${r.nullable ? html` <span class="badge muted">nullable</span>` : ""}</td><td data-label="Required">${r.required ? html`<span class="badge info">required</span>` : "optional"}</td><td data-label="Description">${r.description}</td></tr>`,
  )}</tbody>
</table>`;
}

/**
 * @param {EnumValue[]} values
 * @param {string} caption
 * @param {string} [head]
 * @returns {Html}
 */
function renderEnumTable(values, caption, head = "Value") {
  const withStatus = values.some((v) => v.status);
  return html`<table class="table docs-table enum">
<caption class="visually-hidden">${caption}</caption>
<thead><tr><th scope="col">${head}</th>${withStatus ? html`<th scope="col">HTTP status</th>` : ""}<th scope="col">Description</th></tr></thead>
<tbody>${values.map(
    (v) => html`<tr><th scope="row"><code>${typeof v.value === "string" ? v.value : jsonText(v.value)}</code></th>${withStatus ? html`<td class="status" data-label="HTTP status">${v.status ?? ""}</td>` : ""}<td data-label="Description">${renderText(v.description)}</td></tr>`,
  )}</tbody>
</table>`;
}

/**
 * What a schema is, in full: description, type, allowed values, variants, properties, examples.
 * Used for component schemas and for inline request and response bodies.
 * @param {Model} model
 * @param {unknown} raw
 * @param {string} label  what it is, for table captions: `ExamView`, `Request body of POST /exams`
 * @returns {Html}
 */
export function renderSchemaDetails(model, raw, label) {
  if (!isObject(raw)) return html`<p>Type: any.</p>`;
  const schema = raw;
  const parts = [renderText(schema.description ?? schema.title)];
  const rows = propertyRows(model, schema);
  const type = typeHtml(model, schema);
  // "Type: object" above a table of properties says nothing
  if (!(type.value === "object" && rows.length > 0)) {
    parts.push(html`<p class="schema-type">Type: ${type}${isNullable(schema) ? html` <span class="badge muted">nullable</span>` : ""}</p>`);
  }
  const facts = schemaFacts(schema, false);
  if (facts.length > 0) parts.push(html`<p class="facts-line">${join(facts, " ")}</p>`);
  const values = enumValues(schema);
  if (values.length > 0) {
    parts.push(renderEnumTable(values, `Values of ${label}`));
  } else {
    for (const key of ["oneOf", "anyOf"]) {
      const branches = arr(schema[key]).filter((b) => !isNullSchema(b));
      if (branches.length === 1) {
        // a nullable wrapper (`oneOf: [{…}, {type: "null"}]`): the type line says it all,
        // unless the one branch is an inline object
        const only = branches[0];
        if (isObject(only) && typeof only.$ref !== "string") {
          const rows = propertyRows(model, only);
          if (rows.length > 0) parts.push(renderPropertyTable(rows, `Properties of ${label}`));
        }
        continue;
      }
      if (branches.length === 0) continue;
      parts.push(html`<p>${key === "oneOf" ? "Exactly one of:" : "Any of:"}</p><ol class="variants">${branches.map((b, i) => {
        const inline = isObject(b) && typeof b.$ref !== "string";
        const rows = inline ? propertyRows(model, b) : [];
        return html`<li><p>${typeHtml(model, b)}</p>${inline ? renderText(b.description ?? b.title) : ""}${rows.length > 0 ? renderPropertyTable(rows, `Properties of variant ${i + 1} of ${label}`) : ""}</li>`;
      })}</ol>`);
    }
  }
  const included = arr(schema.allOf).filter((m) => isObject(m) && typeof m.$ref === "string");
  if (included.length > 0) {
    parts.push(html`<p>Includes every property of ${join(included.map((m) => schemaLink(model, m.$ref)), ", ")}.</p>`);
  }
  if (rows.length > 0) parts.push(renderPropertyTable(rows, `Properties of ${label}`));
  if (isObject(schema.additionalProperties) && schema.properties) {
    parts.push(html`<p>Other properties: ${typeHtml(model, schema.additionalProperties)}.</p>`);
  }
  if (isObject(schema.items) && typeof schema.items.$ref !== "string" && isObject(schema.items.properties)) {
    parts.push(html`<p>Each item:</p>${renderPropertyTable(propertyRows(model, schema.items), `Properties of each item of ${label}`)}`);
  }
  parts.push(...examplesOf(model.spec, schema));
  return html`${parts}`;
}

/**
 * A request or response body's schema: a link when it is a component (its entry says the
 * rest), in full when it is inline.
 * @param {Model} model
 * @param {unknown} schema
 * @param {string} label
 * @returns {Html}
 */
export function renderBodySchema(model, schema, label) {
  if (isObject(schema) && typeof schema.$ref === "string") {
    return html`<p class="schema-type">Schema: ${schemaLink(model, schema.$ref)}</p>${renderText(schema.description)}`;
  }
  if (isObject(schema) && schema.type === "array" && isObject(schema.items) && typeof schema.items.$ref === "string") {
    return html`<p class="schema-type">Schema: ${typeHtml(model, schema)}</p>${renderText(schema.description)}`;
  }
  return renderSchemaDetails(model, schema, label);
}

// --- operations -----------------------------------------------------------------------------

/**
 * @param {Json} spec
 * @param {string} name
 * @returns {string}
 */
function describeScheme(spec, name) {
  const scheme = obj(obj(obj(spec.components).securitySchemes)[name]);
  const type = str(scheme.type);
  if (type === "http" && str(scheme.scheme).toLowerCase() === "bearer") {
    return `Bearer token${str(scheme.bearerFormat) ? ` (${str(scheme.bearerFormat)})` : ""} in the Authorization header`;
  }
  if (type === "http") return `HTTP ${str(scheme.scheme) || "authentication"}`;
  if (type === "apiKey") return `API key in the ${str(scheme.in) || "request"} ${str(scheme.in) === "header" ? "header" : "parameter"} ${str(scheme.name)}`.trim();
  if (type === "oauth2") return "OAuth 2";
  if (type === "openIdConnect") return "OpenID Connect";
  return name;
}

/**
 * @typedef {object} SecurityInfo
 * @property {boolean} required  false when anonymous access is one of the options
 * @property {{ scheme: string, description: string, roles: string[] }[][]} options
 *   alternatives (any one suffices), each a list of schemes that all apply
 * @property {string[]} roles  roles named by scopes or an `x-roles` / `x-required-roles` extension
 */

/**
 * What an operation asks of the caller: its `security` (else the document's), with the
 * scopes (the hub's roles) of each scheme, plus `x-roles` / `x-required-roles` if present.
 * @param {Json} spec
 * @param {Json} op
 * @returns {SecurityInfo}
 */
export function securityOf(spec, op) {
  const requirements = Array.isArray(op.security) ? op.security : arr(spec.security);
  /** @type {SecurityInfo["options"]} */
  const options = [];
  let anonymous = requirements.length === 0;
  for (const req of requirements) {
    if (!isObject(req)) continue;
    const entries = Object.entries(req);
    if (entries.length === 0) {
      anonymous = true;
      continue;
    }
    options.push(
      entries.map(([scheme, scopes]) => ({
        scheme,
        description: describeScheme(spec, scheme),
        roles: arr(scopes).filter((s) => typeof s === "string"),
      })),
    );
  }
  /** @type {Set<string>} */
  const roles = new Set();
  for (const option of options) for (const s of option) for (const r of s.roles) roles.add(r);
  for (const key of ["x-roles", "x-required-roles", "x-role", "x-required-role"]) {
    const value = op[key];
    for (const r of typeof value === "string" ? [value] : arr(value)) if (typeof r === "string") roles.add(r);
  }
  return { required: !anonymous, options, roles: [...roles] };
}

/**
 * @param {Json} spec
 * @param {Json} op
 * @returns {Html}
 */
function renderSecurity(spec, op) {
  const info = securityOf(spec, op);
  const roles = info.roles.length > 0 ? html` Role: ${join(info.roles.map((r) => html`<span class="badge info">${r}</span>`), " or ")}.` : "";
  if (info.options.length === 0) return html`<span class="badge ok">None</span> Open to anyone, no token needed.${roles}`;
  const alternatives = info.options.map((option) => join(option.map((s) => html`${s.description}`), " and "));
  const how = join(alternatives, " or ");
  if (!info.required) return html`Optional: ${how}.${roles}`;
  return html`<span class="badge warn">Required</span> ${how}.${roles}`;
}

/**
 * @param {Model} model
 * @param {Operation} operation
 * @returns {Html}
 */
function renderParameters(model, operation) {
  if (operation.parameters.length === 0) return html``;
  const where = `${operation.method} ${operation.path}`;
  const rows = operation.parameters.map((p) => {
    const schema = isObject(p.schema) ? p.schema : obj(Object.values(obj(p.content)).map(obj)[0]).schema;
    const facts = isObject(schema) ? schemaFacts(schema) : [];
    if (p.deprecated === true) facts.push(html`<strong>Deprecated.</strong>`);
    const examples = "example" in p ? [html`Example: ${code(jsonText(p.example))}.`] : isObject(schema) && "example" in schema ? [html`Example: ${code(jsonText(schema.example))}.`] : [];
    const extras = [...facts, ...examples];
    const required = p.required === true || p.in === "path";
    return html`<tr><th scope="row" data-label="Name"><code>${str(p.name)}</code></th><td data-label="In">${str(p.in)}</td><td data-label="Type">${schema === undefined ? "—" : typeHtml(model, schema)}${isNullable(schema) ? html` <span class="badge muted">nullable</span>` : ""}</td><td data-label="Required">${required ? html`<span class="badge info">required</span>` : "optional"}</td><td data-label="Description">${renderText(p.description)}${extras.length > 0 ? html`<p class="facts-line">${join(extras, " ")}</p>` : ""}</td></tr>`;
  });
  return html`<h4>Parameters</h4>
<table class="table docs-table params">
<caption class="visually-hidden">Parameters of ${where}</caption>
<thead><tr><th scope="col">Name</th><th scope="col">In</th><th scope="col">Type</th><th scope="col">Required</th><th scope="col">Description</th></tr></thead>
<tbody>${rows}</tbody>
</table>`;
}

/**
 * @param {Model} model
 * @param {Json} content  a `content` map
 * @param {string} label
 * @returns {Html}
 */
function renderContent(model, content, label) {
  const entries = Object.entries(content);
  return html`${entries.map(([type, raw]) => {
    const media = obj(raw);
    return html`<p class="media-type">Content type: ${code(type)}</p>${"schema" in media ? renderBodySchema(model, media.schema, label) : ""}${examplesOf(model.spec, media)}`;
  })}`;
}

/**
 * @param {Model} model
 * @param {Operation} operation
 * @returns {Html}
 */
function renderRequestBody(model, operation) {
  if (!("requestBody" in operation.op)) return html``;
  const body = deref(model.spec, operation.op.requestBody);
  return html`<h4>Request body</h4>
<p>${body.required === true ? "Required." : "Optional."}</p>
${renderText(body.description)}${renderContent(model, obj(body.content), `the request body of ${operation.method} ${operation.path}`)}`;
}

/**
 * A body that fits on one line: one media type, a schema that is a reference, an array of
 * references or a plain type, and no examples.
 * @param {Json} content
 * @returns {[string, Json] | null}  the media type and its schema
 */
function simpleBody(content) {
  const entries = Object.entries(content);
  if (entries.length !== 1) return null;
  const [type, raw] = entries[0];
  const media = obj(raw);
  if ("example" in media || "examples" in media || !isObject(media.schema)) return null;
  const schema = media.schema;
  if ("example" in schema || "examples" in schema) return null;
  if (typeof schema.$ref === "string") return [type, schema];
  const items = obj(schema.items);
  if (schema.type === "array" && typeof items.$ref === "string") return [type, schema];
  if (!schema.properties && !schema.oneOf && !schema.anyOf && !schema.allOf && !schema.items && !schema.enum) return [type, schema];
  return null;
}

/**
 * @param {Model} model
 * @param {Operation} operation
 * @returns {Html}
 */
function renderResponses(model, operation) {
  const responses = Object.entries(obj(operation.op.responses));
  if (responses.length === 0) return html``;
  return html`<h4>Responses</h4>
<ul class="responses">${responses.map(([status, raw]) => {
    const response = deref(model.spec, raw);
    const tone = /^2/.test(status) ? "ok" : /^3/.test(status) ? "info" : /^[45]/.test(status) ? "bad" : "muted";
    const headers = Object.entries(obj(response.headers)).map(([name, h]) => {
      const header = deref(model.spec, h);
      return html`<li>${code(name)}${header.schema ? html` (${typeHtml(model, header.schema)})` : ""}${str(header.description) ? html`: ${renderInline(header.description)}` : ""}</li>`;
    });
    const content = obj(response.content);
    const simple = simpleBody(content);
    const body = Object.keys(content).length === 0
      ? ""
      : simple
        ? ""
        : renderContent(model, content, `the ${status} response of ${operation.method} ${operation.path}`);
    const inlineBody = simple
      ? html` <span class="response-body">Body: ${typeHtml(model, simple[1])}${simple[0] === "application/json" ? "" : html` (${code(simple[0])})`}</span>`
      : "";
    return html`<li class="response" data-status="${status}"><p class="response-head"><span class="badge ${tone}">${status}</span> ${renderInline(response.description)}${inlineBody}</p>${headers.length > 0 ? html`<p>Headers:</p><ul>${headers}</ul>` : ""}${body}</li>`;
  })}</ul>`;
}

/**
 * One operation's section.
 * @param {Model} model
 * @param {Operation} operation
 * @returns {Html}
 */
export function renderOperation(model, operation) {
  const op = operation.op;
  const operationId = str(op.operationId);
  return html`<section class="card operation" id="${operation.id}" aria-labelledby="${operation.id}-title" data-method="${operation.method.toLowerCase()}">
<h3 id="${operation.id}-title" class="operation-title"><span class="method" data-method="${operation.method.toLowerCase()}">${operation.method}</span> <code class="path">${operation.path}</code></h3>
${operation.summary ? html`<p class="summary">${operation.summary}</p>` : ""}${op.deprecated === true ? html`<p><span class="badge bad">Deprecated</span></p>` : ""}${renderText(op.description)}
<dl class="facts op-facts">
<dt>Authentication</dt><dd>${renderSecurity(model.spec, op)}</dd>
${operationId ? html`<dt>Operation id</dt><dd>${code(operationId)}</dd>` : ""}
${operation.tags.length > 1 ? html`<dt>Tags</dt><dd>${operation.tags.join(", ")}</dd>` : ""}
</dl>
${renderParameters(model, operation)}${renderRequestBody(model, operation)}${renderResponses(model, operation)}
</section>`;
}

// --- the page -------------------------------------------------------------------------------

/**
 * The table of contents: the fixed sections, each tag with its operations, the schemas.
 * Items carry `data-group` / `data-operation` (the ids of their targets) for the filter.
 * @param {Model} model
 * @returns {Html}
 */
export function renderToc(model) {
  const schemes = Object.keys(obj(obj(model.spec.components).securitySchemes));
  return html`<ul class="toc">
<li><a href="#overview">Overview</a></li>
${schemes.length > 0 ? html`<li data-filter-hide><a href="#authentication">Authentication</a></li>` : ""}
${model.errors.body || model.errors.codes.length > 0 ? html`<li data-filter-hide><a href="#errors">Errors</a></li>` : ""}
${model.groups.map(
  (g) => html`<li data-group="${g.id}"><a href="#${g.id}">${g.name}</a>
<ul>${g.operations.map(
    (o) => html`<li data-operation="${o.id}"><a href="#${o.id}"><span class="method" data-method="${o.method.toLowerCase()}">${o.method}</span> <span class="toc-path">${o.path}</span></a></li>`,
  )}</ul></li>`,
)}
${model.schemaIds.size > 0 ? html`<li><a href="#schemas">Schemas</a></li>` : ""}
</ul>`;
}

/**
 * @param {Model} model
 * @returns {Html}
 */
function renderOverview(model) {
  const spec = model.spec;
  const info = obj(spec.info);
  const title = str(info.title) || "API reference";
  const license = obj(info.license);
  const licenseUrl = safeUrl(license.url);
  const contact = obj(info.contact);
  const contactUrl = safeUrl(contact.url);
  const servers = arr(spec.servers).filter(isObject).filter((s) => typeof s.url === "string");
  return html`<section id="overview" class="overview" aria-labelledby="overview-title">
<h1 id="overview-title">${title}</h1>
<p class="version">${str(info.version) ? html`<span class="badge info">Version ${str(info.version)}</span> ` : ""}<span class="badge muted">OpenAPI ${str(spec.openapi) || str(spec.swagger)}</span></p>
${str(info.summary) ? html`<p class="lead">${str(info.summary)}</p>` : ""}${renderText(info.description)}
${servers.length > 0 ? html`<p>Base URL${servers.length > 1 ? "s" : ""}: ${join(servers.map((s) => code(s.url)), ", ")}</p>` : ""}
${str(contact.name) || contactUrl || str(contact.email) ? html`<p>Contact: ${str(contact.name)}${contactUrl ? html` <a href="${contactUrl}">${contactUrl}</a>` : ""}${str(contact.email) ? html` ${code(contact.email)}` : ""}</p>` : ""}
${str(license.name) ? html`<p>License: ${licenseUrl ? html`<a href="${licenseUrl}">${str(license.name)}</a>` : str(license.name)}</p>` : ""}
<p class="hint">${model.operations.length} operation${model.operations.length === 1 ? "" : "s"}, ${model.schemaIds.size} schema${model.schemaIds.size === 1 ? "" : "s"}.</p>
</section>`;
}

/**
 * @param {Model} model
 * @returns {Html}
 */
function renderAuthentication(model) {
  const schemes = Object.entries(obj(obj(model.spec.components).securitySchemes));
  if (schemes.length === 0) return html``;
  return html`<section id="authentication" class="card" aria-labelledby="authentication-title" data-filter-hide>
<h2 id="authentication-title">Authentication</h2>
<dl class="facts">${schemes.map(([name, raw]) => {
    const scheme = deref(model.spec, raw);
    return html`<dt>${code(name)}</dt><dd>${describeScheme(model.spec, name)}.${renderText(scheme.description)}</dd>`;
  })}</dl>
<p class="hint">Each operation says which scheme it needs and, when the hub restricts it, which roles may call it.</p>
</section>`;
}

/**
 * The error body and the stable error codes, near the top of the page.
 * @param {Model} model
 * @returns {Html}
 */
export function renderErrors(model) {
  const { body, codesName, codesSchema, codes, codesDescription } = model.errors;
  if (!body && codes.length === 0) return html``;
  const schemas = obj(obj(model.spec.components).schemas);
  const bodySchema = body ? obj(schemas[body]) : {};
  const rows = body ? propertyRows(model, bodySchema, "", 0, 2) : [];
  return html`<section id="errors" class="card errors" aria-labelledby="errors-title" data-filter-hide>
<h2 id="errors-title">Errors</h2>
${body ? html`<p>Every error response has the same body, ${schemaLink(model, SCHEMA_PREFIX + body)}:</p>${renderText(bodySchema.description)}${rows.length > 0 ? renderPropertyTable(rows, `Properties of the error body ${body}`) : ""}${examplesOf(model.spec, bodySchema)}` : ""}
${codes.length > 0 ? html`<h3 id="error-codes-title">Error codes${codesName ? html` (${schemaLink(model, SCHEMA_PREFIX + codesName)})` : ""}</h3>
<p>The ${code("code")} of an error is one of these stable values; clients may rely on them.</p>
${renderText(codesDescription)}${renderEnumTable(codes, "Error codes", "Code")}${codesSchema && codesName === null ? examplesOf(model.spec, codesSchema) : ""}` : ""}
</section>`;
}

/**
 * @param {Model} model
 * @returns {Html}
 */
function renderSchemas(model) {
  const schemas = obj(obj(model.spec.components).schemas);
  if (model.schemaIds.size === 0) return html``;
  return html`<section id="schemas" class="schemas" aria-labelledby="schemas-title">
<h2 id="schemas-title">Schemas</h2>
<ul class="schema-index">${[...model.schemaIds].map(([name, id]) => html`<li><a href="#${id}"><code>${name}</code></a></li>`)}</ul>
${[...model.schemaIds].map(
  ([name, id]) => html`<section class="card schema" id="${id}" aria-labelledby="${id}-title">
<h3 id="${id}-title"><code>${name}</code></h3>
${name === model.errors.codesName && model.errors.codes.length > 0
    ? html`${renderText(model.errors.codesDescription)}<p class="schema-type">Type: ${typeHtml(model, schemas[name])}</p>${renderEnumTable(model.errors.codes, `Values of ${name}`)}<p>See also <a href="#errors">Errors</a>.</p>`
    : renderSchemaDetails(model, schemas[name], name)}
</section>`,
)}
</section>`;
}

/**
 * The content of `<main>`: overview, authentication, errors, one section per tag with its
 * operations, the schemas, and the (hidden) "nothing matches" note of the filter.
 * @param {Model} model
 * @returns {Html}
 */
export function renderMain(model) {
  return html`${renderOverview(model)}
${renderAuthentication(model)}
${renderErrors(model)}
<p id="docs-no-match" class="notice" data-tone="info" hidden>No operation matches the filter.</p>
${model.groups.map(
  (g) => html`<section class="tag-group" id="${g.id}" aria-labelledby="${g.id}-title">
<h2 id="${g.id}-title">${g.name}</h2>
${renderText(g.description)}
${g.operations.map((o) => renderOperation(model, o))}
</section>`,
)}
${renderSchemas(model)}`;
}
