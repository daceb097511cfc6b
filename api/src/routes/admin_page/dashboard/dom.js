// @ts-check
// Building the page. Every piece of data goes into it through text nodes (`el` appends strings
// as text); nothing is ever parsed as HTML.

/**
 * The element with this id, checked to be of `type` (default any element): a renamed id in
 * dashboard.html fails here by name instead of as a null further on.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @param {new () => T} [type]
 * @returns {T}
 */
export function $(id, type) {
  const node = document.getElementById(id);
  if (!(node instanceof (type ?? HTMLElement))) throw new Error(`#${id} is missing from the page`);
  return /** @type {T} */ (node);
}

/**
 * Properties to set on a new element; `dataset` entries become `data-*` attributes.
 * @template {keyof HTMLElementTagNameMap} K
 * @typedef {Partial<Omit<HTMLElementTagNameMap[K], "dataset">> & { dataset?: Record<string, string> }} Props
 */

/** @typedef {Node | string | null | undefined | false} Child */

/**
 * `el("td", { className: "x", dataset: { label: "Name" } }, "text", childNode)`.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props<K>} [props]
 * @param {...Child} children null, undefined and false are skipped
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  const { dataset, ...rest } = props;
  Object.assign(node, rest);
  if (dataset) Object.assign(node.dataset, dataset);
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

/**
 * A table cell; its content is wrapped so the phone layout keeps it in one grid column.
 * @param {string} label
 * @param {...Child} content
 */
export function cell(label, ...content) {
  return el("td", { dataset: { label } }, el("div", {}, ...content));
}

/**
 * The error banner above the page.
 * @param {string} text
 * @param {...(Node | string)} extra
 */
export function showBanner(text, ...extra) {
  const banner = $("banner");
  banner.replaceChildren(text, ...extra);
  banner.hidden = false;
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let noticeTimer;

/**
 * A short-lived success message above the page, read out by screen readers.
 * @param {string} text
 */
export function showNotice(text) {
  const notice = $("notice");
  notice.textContent = text;
  notice.hidden = false;
  notice.focus();
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (notice.hidden = true), 15_000);
}
