// @ts-check
// The members table: search, status filter, sort and pages.
import { api, guarded, problemText } from "./api.js";
import { $, cell, el } from "./dom.js";
import { statusBadge, timeEl } from "./format.js";
import { openMember } from "./member-panel.js";

/** @typedef {import("./api.js").Schemas["MemberSummary"]} MemberSummary */
/** @typedef {import("./api.js").Schemas["MemberStatus"]} MemberStatus */
/** @typedef {import("./api.js").Schemas["MemberOrder"]} MemberOrder */

const PAGE_SIZE = 25;
/** @type {{ search: string, status: MemberStatus | "", sort: MemberOrder, offset: number }} */
const query = { search: "", status: "", sort: "last_checked_asc", offset: 0 };
let total = 0;
let membersRequest = 0;

export async function loadMembers() {
  const mine = ++membersRequest;
  const result = await api("get", "/api/admin/members", {
    query: {
      sort: query.sort,
      limit: PAGE_SIZE,
      offset: query.offset,
      search: query.search || undefined,
      status: query.status || undefined,
    },
  });
  if (mine !== membersRequest) return; // a newer search has been sent since
  const body = $("members-body");
  if (!result.ok) {
    body.replaceChildren(el("tr", {}, el("td", { colSpan: 6, className: "error" }, problemText(result, "Cannot list members"))));
    return;
  }
  total = result.body.total;
  if (result.body.members.length === 0) {
    body.replaceChildren(el("tr", {}, el("td", { colSpan: 6, className: "muted" }, "No members match.")));
  } else {
    body.replaceChildren(...result.body.members.map(memberRow));
  }
  const first = total === 0 ? 0 : query.offset + 1;
  const last = Math.min(query.offset + PAGE_SIZE, total);
  $("page-info").textContent = `${first}–${last} of ${total}`;
  $("prev", HTMLButtonElement).disabled = query.offset === 0;
  $("next", HTMLButtonElement).disabled = query.offset + PAGE_SIZE >= total;
}

/** @param {MemberSummary} m */
function memberRow(m) {
  return el(
    "tr",
    { dataset: { memberId: String(m.id) } },
    cell(
      "Name",
      el("button", { type: "button", className: "link member-link", onclick: () => openMember(m.id) }, m.name || "(no name)"),
      m.isAdmin ? el("span", { className: "badge badge-admin" }, "admin") : null,
    ),
    cell("Patreon id", el("code", {}, m.patreonId)),
    cell("Tier", m.tier || "—"),
    cell("Status", statusBadge(m)),
    cell("Last checked", timeEl(m.lastChecked)),
    cell("Needs re-login", m.needsRelogin ? el("span", { className: "badge badge-relogin" }, "yes") : "no"),
  );
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let searchTimer;

const searchText = () => $("search", HTMLInputElement).value.trim();

export function wireFilters() {
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    query.search = searchText();
    query.offset = 0;
    guarded(loadMembers)();
  });
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      query.search = searchText();
      query.offset = 0;
      guarded(loadMembers)();
    }, 250);
  });
  // The options in dashboard.html carry the spec's values.
  const status = $("status", HTMLSelectElement);
  status.addEventListener("change", () => {
    query.status = /** @type {MemberStatus | ""} */ (status.value);
    query.offset = 0;
    guarded(loadMembers)();
  });
  const sort = $("sort", HTMLSelectElement);
  sort.addEventListener("change", () => {
    query.sort = /** @type {MemberOrder} */ (sort.value);
    query.offset = 0;
    guarded(loadMembers)();
  });
  $("prev").addEventListener("click", guarded(async () => {
    query.offset = Math.max(0, query.offset - PAGE_SIZE);
    await loadMembers();
  }));
  $("next").addEventListener("click", guarded(async () => {
    query.offset += PAGE_SIZE;
    await loadMembers();
  }));
}
