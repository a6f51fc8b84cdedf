// @ts-check
/**
 * The API reference page (`/docs`, `docs.html`): fetches the hub's OpenAPI document, renders
 * it with `docs-render.js` (pure, escaped markup) and runs the operation filter. The markup is
 * parsed with `DOMParser` (scripts in it never run; there are none, every text is escaped).
 */
import { buildModel, filterOperations, filterStatus, renderMain, renderToc } from "./docs-render.js";

/** Where the server serves the document. */
export const SPEC_URL = "/api/v1/openapi.json";

/** Below this width the contents start folded (the nav sits above the page). */
const NARROW = "(max-width: 56rem)";

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`docs.html lacks #${id}`);
  return el;
}

/**
 * Replaces an element's children with markup built by `docs-render.js`.
 * @param {Element} el
 * @param {string} markup
 */
function setMarkup(el, markup) {
  const parsed = new DOMParser().parseFromString(`<!doctype html><body>${markup}`, "text/html");
  // A copy first: moving nodes out of the parsed body changes its live `childNodes`.
  el.replaceChildren(...Array.from(parsed.body.childNodes));
}

/**
 * @param {HTMLElement} main
 * @param {string} message
 */
function showError(main, message) {
  const box = document.createElement("div");
  box.className = "notice";
  box.dataset.tone = "bad";
  box.setAttribute("role", "alert");
  const title = document.createElement("h1");
  title.textContent = "The API reference could not be loaded";
  const text = document.createElement("p");
  text.textContent = message;
  const retry = document.createElement("p");
  const link = document.createElement("a");
  link.href = SPEC_URL;
  link.textContent = "the raw OpenAPI document";
  retry.append("Reload the page to try again, or open ", link, ".");
  box.append(title, text, retry);
  main.replaceChildren(box);
  main.setAttribute("aria-busy", "false");
}

async function start() {
  const main = byId("main");
  const tocList = byId("docs-toc-list");
  const toc = /** @type {HTMLDetailsElement} */ (byId("docs-toc"));
  const input = /** @type {HTMLInputElement} */ (byId("docs-filter"));
  const status = byId("docs-filter-status");

  if (window.matchMedia(NARROW).matches) toc.open = false;

  /** @type {unknown} */
  let spec;
  try {
    const response = await fetch(SPEC_URL, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`The hub answered ${response.status} to GET ${SPEC_URL}.`);
    spec = await response.json();
  } catch (err) {
    showError(main, err instanceof SyntaxError ? `${SPEC_URL} is not valid JSON.` : String(err instanceof Error ? err.message : err));
    return;
  }
  /** @type {import("./docs-render.js").Model} */
  let model;
  try {
    model = buildModel(spec);
  } catch (err) {
    showError(main, err instanceof Error ? err.message : String(err));
    return;
  }

  const title = typeof model.spec.info?.title === "string" ? model.spec.info.title : "API";
  document.title = `${title} — API reference`;
  setMarkup(tocList, renderToc(model).value);
  setMarkup(main, renderMain(model).value);
  main.setAttribute("aria-busy", "false");

  const noMatch = byId("docs-no-match");
  const hideWhileFiltering = Array.from(document.querySelectorAll("[data-filter-hide]"));
  /** @type {[HTMLElement, string][]} */
  const operationEls = [];
  /** @type {[HTMLElement, string][]} */
  const groupEls = [];
  for (const group of model.groups) {
    groupEls.push([byId(group.id), group.id]);
    for (const op of group.operations) operationEls.push([byId(op.id), op.id]);
  }
  for (const el of tocList.querySelectorAll("[data-group]")) {
    if (el instanceof HTMLElement) groupEls.push([el, el.dataset.group ?? ""]);
  }
  for (const el of tocList.querySelectorAll("[data-operation]")) {
    if (el instanceof HTMLElement) operationEls.push([el, el.dataset.operation ?? ""]);
  }

  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let statusTimer;
  const apply = () => {
    const query = input.value;
    const result = filterOperations(model, query);
    const active = query.trim() !== "";
    for (const [el, id] of operationEls) el.hidden = !result.operations.has(id);
    for (const [el, id] of groupEls) el.hidden = !result.groups.has(id);
    for (const el of hideWhileFiltering) if (el instanceof HTMLElement) el.hidden = active;
    noMatch.hidden = result.shown > 0;
    // The status is a live region: say it once typing pauses, not at every key.
    clearTimeout(statusTimer);
    statusTimer = setTimeout(() => {
      status.textContent = filterStatus(result, query);
    }, 400);
    const url = new URL(window.location.href);
    if (active) url.searchParams.set("q", query);
    else url.searchParams.delete("q");
    window.history.replaceState(window.history.state, "", url);
  };

  input.value = new URL(window.location.href).searchParams.get("q") ?? "";
  input.disabled = false;
  input.addEventListener("input", apply);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && input.value !== "") {
      event.preventDefault();
      input.value = "";
      apply();
    }
  });
  apply();

  // On a narrow screen the contents sit above the page: fold them when one is chosen, so the
  // page scrolls to it (the fold happens before the browser follows the link).
  tocList.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target.closest("a") : null;
    if (target && window.matchMedia(NARROW).matches) toc.open = false;
  });

  // The page was empty when the browser looked for the fragment: look again.
  if (window.location.hash.length > 1) {
    let id = window.location.hash.slice(1);
    try {
      id = decodeURIComponent(id);
    } catch {
      // as is
    }
    document.getElementById(id)?.scrollIntoView();
  }
}

start().catch((err) => {
  const main = document.getElementById("main");
  if (main) showError(main, err instanceof Error ? err.message : String(err));
});
