// The API reference page's rendering (docs-render.js), against a small hand-written OpenAPI 3.1
// document shaped like utoipa's output: $ref resolution and links, nullable types, enums, the
// error body and codes, grouping by tag (and no tag), the filter, and escaping of every text.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Html,
  html,
  escapeHtml,
  resolveRef,
  deref,
  schemaRefName,
  isNullable,
  enumValues,
  slug,
  buildModel,
  collectOperations,
  groupByTag,
  findErrors,
  codeDescriptions,
  matchesQuery,
  filterOperations,
  filterStatus,
  typeHtml,
  propertyRows,
  securityOf,
  renderText,
  renderToc,
  renderMain,
  renderErrors,
  renderOperation,
  UNTAGGED,
} from "../docs-render.js";

const XSS = `<script>alert("x")</script>`;

/** A fresh copy of the fixture, so a test may change it. */
function fixture() {
  return {
    openapi: "3.1.0",
    info: {
      title: "Proctor Hub",
      version: "1.2.3",
      description: `The hub's API. ${XSS}\n\nUse \`Authorization: Bearer\`.`,
    },
    tags: [
      { name: "auth", description: "Logging in." },
      { name: "exams", description: `Exams ${XSS}` },
      { name: "declared-but-unused" },
    ],
    security: [{ bearer: [] }],
    paths: {
      "/api/v1/auth/login": {
        post: {
          tags: ["auth"],
          summary: "Log in",
          operationId: "login",
          security: [],
          requestBody: {
            required: true,
            content: { "application/json": { schema: { $ref: "#/components/schemas/LoginRequest" } } },
          },
          responses: {
            200: {
              description: "Tokens",
              content: {
                "application/json": {
                  schema: { $ref: "#/components/schemas/LoginResponse" },
                  example: { accessToken: "eyJ…", note: XSS },
                },
              },
            },
            401: { $ref: "#/components/responses/Unauthorized" },
          },
        },
      },
      "/api/v1/exams/{id}": {
        parameters: [
          { name: "id", in: "path", required: true, description: "The exam's id", schema: { type: "string", format: "uuid" } },
        ],
        get: {
          tags: ["exams"],
          summary: `Read one exam ${XSS}`,
          description: "Staff only.",
          operationId: "get_exam",
          security: [{ bearer: ["ADMIN", "PROCTOR"] }],
          parameters: [
            { name: "view", in: "query", required: false, schema: { type: ["string", "null"], enum: ["full", "short", null] } },
          ],
          responses: {
            200: {
              description: "The exam",
              content: { "application/json": { schema: { $ref: "#/components/schemas/ExamView" } } },
            },
            404: {
              description: "No such exam",
              content: { "application/json": { schema: { $ref: "#/components/schemas/ErrorBody" } } },
            },
          },
        },
      },
      "/api/v1/exams": {
        get: {
          tags: ["exams"],
          summary: "List exams",
          operationId: "list_exams",
          responses: {
            200: {
              description: "A page of exams",
              content: {
                "application/json": {
                  schema: { type: "array", items: { $ref: "#/components/schemas/ExamView" } },
                },
              },
            },
            403: {
              description: "Not staff",
              content: { "application/json": { schema: { $ref: "#/components/schemas/ErrorBody" } } },
            },
          },
        },
      },
      "/healthz": {
        get: {
          summary: "Liveness",
          security: [],
          responses: { 200: { description: "Up" } },
        },
      },
      "/api/v1/things": {
        delete: {
          tags: ["misc"],
          summary: "Remove things",
          responses: { 204: { description: "Gone" } },
        },
      },
    },
    components: {
      responses: {
        Unauthorized: {
          description: "Bad credentials",
          content: { "application/json": { schema: { $ref: "#/components/schemas/ErrorBody" } } },
        },
      },
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
      },
      schemas: {
        LoginRequest: {
          type: "object",
          required: ["email", "password"],
          properties: {
            email: { type: "string", format: "email" },
            password: { type: "string", writeOnly: true },
            deviceFingerprint: { type: ["string", "null"], description: "Optional device id" },
          },
        },
        LoginResponse: {
          type: "object",
          required: ["accessToken", "user"],
          properties: {
            accessToken: { type: "string" },
            user: { $ref: "#/components/schemas/UserView" },
          },
        },
        UserView: {
          type: "object",
          required: ["id", "role"],
          properties: {
            id: { type: "string", format: "uuid" },
            role: { $ref: "#/components/schemas/Role" },
          },
        },
        Role: { type: "string", enum: ["ADMIN", "PROCTOR", "CANDIDATE"], description: "What a user may do." },
        ExamView: {
          type: "object",
          description: `An exam. ${XSS}`,
          required: ["id", "status", "title"],
          properties: {
            id: { type: "string", format: "uuid" },
            title: { type: "string", description: `The title <img src=x onerror=alert(1)>` },
            status: {
              oneOf: [
                { type: "string", enum: ["DRAFT"], description: "Being written" },
                { type: "string", enum: ["PUBLISHED"], description: "Open to candidates" },
                { type: "string", const: "ARCHIVED", description: "Closed" },
              ],
            },
            startsAt: { oneOf: [{ type: "null" }, { type: "string", format: "date-time" }] },
            owner: { oneOf: [{ $ref: "#/components/schemas/UserView" }, { type: "null" }] },
            tags: { type: "array", items: { type: "string" } },
            settings: {
              type: "object",
              properties: { randomize: { type: "boolean", default: false } },
            },
          },
          example: { id: "00000000-0000-0000-0000-000000000000", title: XSS },
        },
        ErrorBody: {
          type: "object",
          required: ["error"],
          properties: { error: { $ref: "#/components/schemas/ErrorDetail" } },
        },
        ErrorDetail: {
          type: "object",
          required: ["code", "message"],
          properties: {
            code: { $ref: "#/components/schemas/ErrorCode" },
            message: { type: "string" },
            field: { type: ["string", "null"], description: "The field at fault (422 only)" },
          },
        },
        ErrorCode: {
          type: "string",
          enum: ["INVALID_CREDENTIALS", "NOT_FOUND", "FORBIDDEN", "INTERNAL"],
          description:
            "The stable error codes.\n\n- `INVALID_CREDENTIALS` (401): wrong email or password\n- `NOT_FOUND`: absent, or someone else's\n- `FORBIDDEN` — not allowed",
        },
        "a/b~c": { type: "integer", description: "an awkward name" },
        [`Evil${XSS}`]: { type: "string", description: XSS },
      },
    },
  };
}

/** Every `id="…"` of some markup. */
function ids(markup) {
  return [...markup.matchAll(/\sid="([^"]*)"/g)].map((m) => m[1]);
}

test("escapeHtml and the html tag escape every interpolated text but not Html", () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  const inner = html`<b>${"<i>"}</b>`;
  assert.ok(inner instanceof Html);
  assert.equal(html`<p>${inner}${XSS}${["<", html`<br>`]}${null}${undefined}${false}${0}</p>`.value,
    `<p><b>&lt;i&gt;</b>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;<br>0</p>`);
});

test("resolveRef follows local JSON pointers; deref follows a chain of $refs", () => {
  const spec = fixture();
  assert.equal(resolveRef(spec, "#/components/schemas/Role").enum.length, 3);
  assert.equal(resolveRef(spec, "#/components/schemas/a~1b~0c").description, "an awkward name");
  assert.equal(resolveRef(spec, "#/components/schemas/Missing"), undefined);
  assert.equal(resolveRef(spec, "https://example.com/x.json#/a"), undefined);
  assert.equal(resolveRef(spec, "#/components/schemas/Role/enum/1"), "PROCTOR");
  const unauthorized = deref(spec, { $ref: "#/components/responses/Unauthorized" });
  assert.equal(unauthorized.description, "Bad credentials");
  spec.components.responses.Alias = { $ref: "#/components/responses/Unauthorized" };
  assert.equal(deref(spec, { $ref: "#/components/responses/Alias" }).description, "Bad credentials");
  // a cycle ends instead of looping
  spec.components.responses.Loop = { $ref: "#/components/responses/Loop" };
  assert.deepEqual(Object.keys(deref(spec, { $ref: "#/components/responses/Loop" })), ["$ref"]);
  assert.equal(schemaRefName("#/components/schemas/ExamView"), "ExamView");
  assert.equal(schemaRefName("#/components/schemas/a~1b~0c"), "a/b~c");
  assert.equal(schemaRefName("#/components/responses/Unauthorized"), null);
});

test("a $ref renders as a link to the schema's entry, which exists in the Schemas section", () => {
  const model = buildModel(fixture());
  const main = renderMain(model).value;
  const examId = model.schemaIds.get("ExamView");
  assert.equal(examId, "schema-ExamView");
  assert.equal(typeHtml(model, { $ref: "#/components/schemas/ExamView" }).value,
    `<a class="schema-link" href="#schema-ExamView"><code>ExamView</code></a>`);
  assert.match(typeHtml(model, { type: "array", items: { $ref: "#/components/schemas/ExamView" } }).value,
    /^array of <a class="schema-link" href="#schema-ExamView">/);
  // every in-page link points at an element of the page
  const toc = renderToc(model).value;
  const all = new Set(ids(main));
  for (const m of (main + toc).matchAll(/href="#([^"]*)"/g)) assert.ok(all.has(m[1]), `no element #${m[1]}`);
  // and ids are unique, also for names that slug alike
  assert.equal(all.size, ids(main).length);
  assert.equal(model.schemaIds.get("a/b~c"), "schema-a-b-c");
  // a reference to a schema that does not exist stays as code
  assert.equal(typeHtml(model, { $ref: "#/components/schemas/Nope" }).value, "<code>#/components/schemas/Nope</code>");
  // the response of the login operation goes through components/responses to ErrorBody
  const login = model.operations.find((o) => o.op.operationId === "login");
  const rendered = renderOperation(model, login).value;
  assert.match(rendered, /data-status="401".*Bad credentials.*href="#schema-ErrorBody"/s);
  assert.match(rendered, /Schema: <a class="schema-link" href="#schema-LoginRequest">/);
});

test("nullable: type [x, null], oneOf with null, enum with null", () => {
  assert.equal(isNullable({ type: ["string", "null"] }), true);
  assert.equal(isNullable({ oneOf: [{ type: "null" }, { type: "string" }] }), true);
  assert.equal(isNullable({ anyOf: [{ $ref: "#/components/schemas/X" }, { type: "null" }] }), true);
  assert.equal(isNullable({ enum: ["a", null] }), true);
  assert.equal(isNullable({ type: "string", nullable: true }), true);
  assert.equal(isNullable({ type: "string" }), false);
  assert.equal(isNullable({ $ref: "#/components/schemas/X" }), false);

  const model = buildModel(fixture());
  assert.equal(typeHtml(model, { type: ["string", "null"] }).value, "string | null");
  assert.equal(typeHtml(model, { oneOf: [{ type: "null" }, { type: "string", format: "date-time" }] }).value,
    "string (date-time) | null");
  assert.equal(typeHtml(model, { oneOf: [{ $ref: "#/components/schemas/UserView" }, { type: "null" }] }).value,
    `<a class="schema-link" href="#schema-UserView"><code>UserView</code></a> | null`);
  const rows = propertyRows(model, model.spec.components.schemas.ExamView);
  const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
  assert.equal(byName.startsAt.nullable, true);
  assert.equal(byName.owner.nullable, true);
  assert.equal(byName.id.nullable, false);
  assert.equal(byName.id.required, true);
  assert.equal(byName.startsAt.required, false);
  // nested inline objects flatten with dotted names
  assert.equal(byName["settings.randomize"].type.value, "boolean");
  assert.match(byName["settings.randomize"].description.value, /Default: <code>false<\/code>/);
  assert.equal(byName.tags.type.value, "array of string");
});

test("enums: enum arrays, oneOf of one-value enums and consts, each with its description", () => {
  assert.deepEqual(enumValues({ type: "string", enum: ["A", "B"] }), [
    { value: "A", description: "" },
    { value: "B", description: "" },
  ]);
  assert.deepEqual(enumValues({ type: ["string", "null"], enum: ["A", null], "x-enum-descriptions": ["first", "none"] }), [
    { value: "A", description: "first" },
  ]);
  const spec = fixture();
  assert.deepEqual(enumValues(spec.components.schemas.ExamView.properties.status), [
    { value: "DRAFT", description: "Being written" },
    { value: "PUBLISHED", description: "Open to candidates" },
    { value: "ARCHIVED", description: "Closed" },
  ]);
  assert.deepEqual(enumValues({ type: "string" }), []);
  assert.deepEqual(enumValues({ oneOf: [{ $ref: "#/x" }, { type: "null" }] }), []);

  const model = buildModel(spec);
  assert.equal(typeHtml(model, spec.components.schemas.Role).value, "string");
  const main = renderMain(model).value;
  // the Role entry lists its values in a table
  const role = main.slice(main.indexOf(`id="schema-Role"`));
  assert.match(role, /<caption class="visually-hidden">Values of Role<\/caption>/);
  assert.match(role, /<th scope="row"><code>CANDIDATE<\/code><\/th>/);
  // a property's type shows the values of a oneOf enum
  const rows = propertyRows(model, spec.components.schemas.ExamView);
  assert.equal(rows.find((r) => r.name === "status").type.value,
    `<code>&quot;DRAFT&quot;</code> | <code>&quot;PUBLISHED&quot;</code> | <code>&quot;ARCHIVED&quot;</code>`);
  // a parameter's enum appears in its description cell
  const exam = model.operations.find((o) => o.op.operationId === "get_exam");
  assert.match(renderOperation(model, exam).value, /One of: <code>&quot;full&quot;<\/code>, <code>&quot;short&quot;<\/code>\./);
});

test("the error body and the stable error codes are found and shown with their descriptions", () => {
  const spec = fixture();
  const errors = findErrors(spec);
  assert.equal(errors.body, "ErrorBody");
  assert.equal(errors.codesName, "ErrorCode");
  assert.deepEqual(errors.codes, [
    { value: "INVALID_CREDENTIALS", description: "wrong email or password", status: "401" },
    { value: "NOT_FOUND", description: "absent, or someone else's", status: "" },
    { value: "FORBIDDEN", description: "not allowed", status: "" },
    { value: "INTERNAL", description: "", status: "" },
  ]);
  assert.equal(errors.codesDescription, "The stable error codes.");

  const model = buildModel(spec);
  const section = renderErrors(model).value;
  assert.match(section, /^<section id="errors"/);
  assert.match(section, /href="#schema-ErrorBody"/);
  assert.match(section, /<th scope="col">Code<\/th><th scope="col">HTTP status<\/th><th scope="col">Description<\/th>/);
  assert.match(section, /<th scope="row"><code>INVALID_CREDENTIALS<\/code><\/th><td class="status" data-label="HTTP status">401<\/td><td data-label="Description"><p>wrong email or password<\/p><\/td>/);
  assert.match(section, /<th scope="row"><code>NOT_FOUND<\/code><\/th><td class="status" data-label="HTTP status"><\/td><td data-label="Description"><p>absent, or someone else&#39;s<\/p><\/td>/);
  assert.match(section, /<code>INTERNAL<\/code>/);
  // the body's referenced parts are spelled out: error.code, error.message, error.field
  assert.match(section, /<code>error\.code<\/code><\/th><td data-label="Type"><a class="schema-link" href="#schema-ErrorCode">/);
  assert.match(section, /<code>error\.field<\/code><\/th><td data-label="Type">string \| null <span class="badge muted">nullable<\/span>/);
  assert.match(renderToc(model).value, /href="#errors"/);

  // without an ErrorCode component: the enum of the body's `code` property
  delete spec.components.schemas.ErrorCode;
  spec.components.schemas.ErrorDetail.properties.code = { type: "string", enum: ["GONE", "BUSY"] };
  const inline = findErrors(spec);
  assert.equal(inline.codesName, null);
  assert.deepEqual(inline.codes.map((c) => c.value), ["GONE", "BUSY"]);
});

test("codeDescriptions takes only lines about known codes", () => {
  const { described, rest } = codeDescriptions("Intro.\n- `A`: one\n* B — two\n- `C`: unknown code\nOutro.", new Set(["A", "B"]));
  assert.deepEqual([...described], [["A", { text: "one", status: "" }], ["B", { text: "two", status: "" }]]);
  assert.equal(rest, "Intro.\n- `C`: unknown code\nOutro.");
});

test("grouping by tag: declared tags in order, then undeclared ones, then operations without a tag", () => {
  const spec = fixture();
  const ops = collectOperations(spec);
  assert.deepEqual(ops.map((o) => `${o.method} ${o.path}`), [
    "POST /api/v1/auth/login",
    "GET /api/v1/exams/{id}",
    "GET /api/v1/exams",
    "GET /healthz",
    "DELETE /api/v1/things",
  ]);
  const groups = groupByTag(spec, ops);
  assert.deepEqual(groups.map((g) => [g.name, g.operations.length]), [
    ["auth", 1],
    ["exams", 2],
    ["misc", 1],
    [UNTAGGED, 1],
  ]);
  assert.equal(groups[3].operations[0].path, "/healthz");
  assert.equal(groups[3].id, "tag-untagged");
  assert.equal(groups[0].description, "Logging in.");
  // path-level parameters are merged into the operation's
  assert.deepEqual(ops[1].parameters.map((p) => p.name), ["id", "view"]);

  const model = buildModel(spec);
  const toc = renderToc(model).value;
  assert.match(toc, /<li data-group="tag-untagged"><a href="#tag-untagged">Other operations<\/a>\s*<ul><li data-operation="op-get-healthz">/);
  const main = renderMain(model).value;
  assert.match(main, /<section class="tag-group" id="tag-untagged" aria-labelledby="tag-untagged-title">\s*<h2 id="tag-untagged-title">Other operations<\/h2>/);
  // the untagged operation has no operation id: its anchor comes from method and path
  assert.match(main, /<section class="card operation" id="op-get-healthz"/);
  assert.ok(!main.includes("declared-but-unused"));
  // a document without tags at all
  const bare = { openapi: "3.1.0", info: { title: "t", version: "1" }, paths: { "/x": { get: { responses: {} } } } };
  const bareModel = buildModel(bare);
  assert.deepEqual(bareModel.groups.map((g) => g.name), [UNTAGGED]);
  assert.doesNotThrow(() => renderMain(bareModel));
});

test("the filter matches path, summary, tag, method and operation id, every word, any case", () => {
  const model = buildModel(fixture());
  const [login, getExam, listExams, healthz, things] = model.operations;
  assert.equal(matchesQuery(login, ""), true);
  assert.equal(matchesQuery(login, "  "), true);
  assert.equal(matchesQuery(login, "LOG IN"), true); // summary, two words
  assert.equal(matchesQuery(login, "auth/login"), true); // path
  assert.equal(matchesQuery(listExams, "exams"), true);
  assert.equal(matchesQuery(healthz, "liveness"), true);
  assert.equal(matchesQuery(things, "misc"), true); // tag
  assert.equal(matchesQuery(things, "delete"), true); // method
  assert.equal(matchesQuery(getExam, "get_exam"), true); // operation id
  assert.equal(matchesQuery(getExam, "{id}"), true);
  assert.equal(matchesQuery(login, "exams"), false);
  assert.equal(matchesQuery(getExam, "exams nothing"), false);

  const all = filterOperations(model, "");
  assert.equal(all.shown, 5);
  assert.equal(all.total, 5);
  assert.equal(filterStatus(all, ""), "5 operations.");

  const exams = filterOperations(model, "Exam");
  assert.deepEqual([...exams.operations], [getExam.id, listExams.id]);
  assert.deepEqual([...exams.groups], ["tag-exams"]);
  assert.equal(filterStatus(exams, "Exam"), "2 of 5 operations shown.");

  const none = filterOperations(model, "zzz");
  assert.equal(none.shown, 0);
  assert.equal(none.groups.size, 0);
  assert.equal(filterStatus(none, " zzz "), "No operation matches “zzz”.");
});

test("security: roles from the scopes, none when security is empty, the document's by default", () => {
  const spec = fixture();
  const [login, getExam, listExams] = collectOperations(spec);
  assert.deepEqual(securityOf(spec, getExam.op), {
    required: true,
    options: [[{ scheme: "bearer", description: "Bearer token (JWT) in the Authorization header", roles: ["ADMIN", "PROCTOR"] }]],
    roles: ["ADMIN", "PROCTOR"],
  });
  assert.equal(securityOf(spec, login.op).required, false);
  assert.equal(securityOf(spec, login.op).options.length, 0);
  assert.equal(securityOf(spec, listExams.op).required, true); // inherited
  assert.deepEqual(securityOf(spec, { "x-roles": ["ADMIN"], security: [{ bearer: [] }] }).roles, ["ADMIN"]);
  assert.equal(securityOf(spec, { security: [{}, { bearer: [] }] }).required, false);

  const model = buildModel(spec);
  const exam = renderOperation(model, model.operations[1]).value;
  assert.match(exam, /<dt>Authentication<\/dt><dd><span class="badge warn">Required<\/span> Bearer token \(JWT\) in the Authorization header\. Role: <span class="badge info">ADMIN<\/span> or <span class="badge info">PROCTOR<\/span>\.<\/dd>/);
  assert.match(renderOperation(model, model.operations[0]).value, /<dd><span class="badge ok">None<\/span>/);
});

test("every text of the document is escaped: no markup from it reaches the page", () => {
  const spec = fixture();
  spec.tags.push({ name: `t"><img src=x onerror=alert(1)>`, description: XSS });
  spec.paths[`/p/<script>`] = {
    get: { tags: [`t"><img src=x onerror=alert(1)>`], summary: XSS, description: XSS, operationId: `"><script>`, responses: { [`<b>`]: { description: XSS } } },
  };
  spec.components.securitySchemes.bearer.description = XSS;
  spec.info.license = { name: XSS, url: "javascript:alert(1)" };
  spec.servers = [{ url: XSS }];
  spec.components.schemas.ExamView.properties[XSS] = { type: "string", description: XSS, example: XSS, enum: [XSS] };
  const model = buildModel(spec);
  const page = renderToc(model).value + renderMain(model).value;
  assert.ok(!/<script/i.test(page), "a <script> tag got through");
  assert.ok(!/<img/i.test(page), "an <img> tag got through");
  assert.ok(!/href="javascript:/i.test(page));
  assert.ok(page.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
  // ids and hrefs stay inside [A-Za-z0-9_-]
  for (const id of ids(page)) assert.match(id, /^[A-Za-z0-9_-]+$/);
  for (const m of page.matchAll(/href="#([^"]*)"/g)) assert.match(m[1], /^[A-Za-z0-9_-]+$/);
  // no attribute was broken out of: every tag in the output is one the renderer writes
  const tags = new Set([...page.matchAll(/<([a-z0-9]+)[\s>]/g)].map((m) => m[1]));
  for (const tag of tags) {
    assert.ok(
      ["a", "br", "caption", "code", "dd", "div", "dl", "dt", "h1", "h2", "h3", "h4", "li", "ol", "p", "pre", "section", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul"].includes(tag),
      `unexpected <${tag}>`,
    );
  }
  assert.ok(!page.includes("<b>"), "the <b> status got through");
});

test("renderText: paragraphs, bullet lists, `code` and **bold**, escaped first", () => {
  assert.equal(renderText("").value, "");
  assert.equal(renderText(undefined).value, "");
  assert.equal(renderText("One\nline.\n\n- a `x<y>`\n- b\n  continued\n\n**Note** [`Error`]").value,
    "<p>One line.</p><ul><li>a <code>x&lt;y&gt;</code></li><li>b continued</li></ul><p><strong>Note</strong> <code>Error</code></p>");
});

test("the overview shows title, version and description; examples are shown escaped", () => {
  const model = buildModel(fixture());
  const main = renderMain(model).value;
  assert.match(main, /<h1 id="overview-title">Proctor Hub<\/h1>/);
  assert.match(main, /Version 1\.2\.3/);
  assert.match(main, /OpenAPI 3\.1\.0/);
  assert.match(main, /<code>Authorization: Bearer<\/code>/);
  // the response example and the schema example
  assert.match(main, /<p class="example-label">Example<\/p><pre><code>\{\n  &quot;accessToken&quot;: &quot;eyJ…&quot;/);
  const examView = main.slice(main.indexOf(`id="schema-ExamView"`));
  assert.match(examView, /<pre><code>\{\n  &quot;id&quot;: &quot;00000000/);
  // parameters table: name, in, type, required, description with th scope
  const exam = renderOperation(model, model.operations[1]).value;
  assert.match(exam, /<th scope="col">Name<\/th><th scope="col">In<\/th><th scope="col">Type<\/th><th scope="col">Required<\/th><th scope="col">Description<\/th>/);
  assert.match(exam, /<th scope="row" data-label="Name"><code>id<\/code><\/th><td data-label="In">path<\/td><td data-label="Type">string \(uuid\)<\/td><td data-label="Required"><span class="badge info">required<\/span><\/td>/);
  assert.match(exam, /<code>view<\/code><\/th><td data-label="In">query<\/td><td data-label="Type">string \| null <span class="badge muted">nullable<\/span><\/td><td data-label="Required">optional<\/td>/);
});

test("buildModel refuses what is not an OpenAPI document; slug keeps ids safe", () => {
  assert.throws(() => buildModel(null), /not an OpenAPI document/);
  assert.throws(() => buildModel({ paths: {} }), /not an OpenAPI document/);
  assert.throws(() => buildModel([1]), /not an OpenAPI document/);
  assert.equal(slug("get-/api/v1/exams/{id}"), "get-api-v1-exams-id");
  assert.equal(slug("<>"), "x");
  // a hostile but valid document still renders
  const weird = { openapi: "3.1.0", paths: { "/a": { get: "nope", post: { tags: "x", parameters: [null, 3], responses: [] } } }, components: { schemas: { A: null, B: { properties: { c: null } } } } };
  const model = buildModel(weird);
  assert.equal(model.operations.length, 1);
  assert.doesNotThrow(() => renderMain(model).value + renderToc(model).value);
});

test("anchors come from method and path, so operations sharing an operationId stay apart", () => {
  const spec = fixture();
  spec.paths["/api/v1/exams"].get.operationId = "list";
  spec.paths["/api/v1/users"] = { get: { tags: ["users"], operationId: "list", responses: {} } };
  const model = buildModel(spec);
  const anchors = model.operations.map((o) => o.id);
  assert.ok(anchors.includes("op-get-api-v1-exams"));
  assert.ok(anchors.includes("op-get-api-v1-users"));
  assert.equal(new Set(anchors).size, anchors.length);
  // an id already taken (by a schema, say) gets a suffix rather than a duplicate
  spec.components.schemas["op-get-healthz"] = { type: "string" };
  const clash = buildModel(spec);
  const page = renderMain(clash).value;
  assert.equal(new Set(ids(page)).size, ids(page).length);
});

test("a response whose body is just a reference fits on its line; others are spelled out", () => {
  const model = buildModel(fixture());
  const exam = renderOperation(model, model.operations[1]).value;
  assert.match(exam, /<li class="response" data-status="404"><p class="response-head"><span class="badge bad">404<\/span> No such exam <span class="response-body">Body: <a class="schema-link" href="#schema-ErrorBody"><code>ErrorBody<\/code><\/a><\/span><\/p><\/li>/);
  // with an example, the content type, schema and example are shown in full
  const login = renderOperation(model, model.operations[0]).value;
  assert.match(login, /data-status="200"><p class="response-head"><span class="badge ok">200<\/span> Tokens<\/p><p class="media-type">Content type: <code>application\/json<\/code><\/p><p class="schema-type">Schema: <a class="schema-link" href="#schema-LoginResponse">/);
  // the ErrorCode entry among the schemas shows the same table as the Errors section
  const main = renderMain(model).value;
  const entry = main.slice(main.indexOf(`id="schema-ErrorCode"`));
  assert.match(entry, /<code>INVALID_CREDENTIALS<\/code><\/th><td class="status" data-label="HTTP status">401<\/td>/);
  assert.match(entry, /<a href="#errors">Errors<\/a>/);
});
