// @ts-check
// The member dialog's data rights: export the member's data as JSON, erase them after a typed
// confirmation (never a browser dialog, which headless tests can't answer).
import { api, guarded, problemText } from "./api.js";
import { $, el, showNotice } from "./dom.js";

/** @typedef {import("./api.js").Schemas["MemberSummary"]} MemberSummary */
/** @typedef {import("./api.js").Schemas["ErasureReportOut"]} ErasureReportOut */

/**
 * The member shown in the dialog, once loaded: export and erase act on this one.
 * @type {MemberSummary | null}
 */
let loadedMember = null;
let erasing = false;
/**
 * Reloads the members list and dead jobs after an erase; set by `wireDataRights`.
 * @type {() => Promise<unknown>}
 */
let refreshLists = () => Promise.resolve();

const eraseConfirm = () => $("erase-confirm", HTMLInputElement);

/**
 * @param {string} text
 * @param {string} [className]
 */
function sayData(text, className = "") {
  $("data-note").textContent = text;
  $("data-note").className = className;
}

/** Disables the controls until the next member has loaded. */
export function resetDataRights() {
  loadedMember = null;
  $("export-member", HTMLButtonElement).disabled = true;
  $("erase-start", HTMLButtonElement).disabled = true;
  $("erase-expected").textContent = "";
  showEraseForm(false, false);
  sayData("");
}

/** @param {MemberSummary} m the member just loaded into the dialog */
export function showDataRights(m) {
  loadedMember = m;
  $("erase-expected").textContent = m.patreonId;
  $("export-member", HTMLButtonElement).disabled = false;
  $("erase-start", HTMLButtonElement).disabled = false;
  updateEraseButton();
}

/** The dialog closed: answers still under way must not act on it. */
export function forgetMember() {
  loadedMember = null;
}

/**
 * Opens or closes the typed confirmation; `moveFocus` puts the keyboard where the eye goes.
 * @param {boolean} open
 */
function showEraseForm(open, moveFocus = true) {
  $("erase-form").hidden = !open;
  $("erase-start").setAttribute("aria-expanded", String(open));
  eraseConfirm().value = "";
  updateEraseButton();
  if (moveFocus) (open ? eraseConfirm() : $("erase-start")).focus();
}

/** "Erase permanently" is enabled only once the member's Patreon id has been typed exactly. */
function updateEraseButton() {
  const typed = eraseConfirm().value.trim();
  $("erase-member", HTMLButtonElement).disabled = erasing || !loadedMember || typed !== loadedMember.patreonId;
}

/**
 * A file name made only of safe characters, whatever the id holds.
 * @param {string} patreonId
 */
function exportFileName(patreonId) {
  return `member-${String(patreonId).replace(/[^A-Za-z0-9_-]/g, "_")}.json`;
}

/**
 * Fetches the export with the dashboard's own credentials (a plain link could not renew an
 * expired sign-in) and saves it through a Blob URL. The link lives inside the dialog: while the
 * dialog is modal the rest of the page is inert.
 */
async function exportMember() {
  const m = loadedMember;
  if (!m) return;
  const button = $("export-member", HTMLButtonElement);
  button.disabled = true;
  sayData("Preparing the export…");
  try {
    const result = await api("get", "/api/admin/members/{id}/export", { params: { id: m.id } });
    if (m !== loadedMember) return;
    if (!result.ok || result.body === null) {
      sayData(problemText(result, "Cannot export this member"), "error");
      return;
    }
    const name = exportFileName(m.patreonId);
    const blob = new Blob([`${JSON.stringify(result.body, null, 2)}\n`], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: name, hidden: true });
    $("member-dialog").append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    sayData(`Saved ${name}.`, "ok");
  } finally {
    if (m === loadedMember) button.disabled = false;
  }
}

/** @type {Record<keyof ErasureReportOut, string>} */
const ERASED = {
  users: "member",
  sessions: "sign-ins",
  handoffCodes: "handoff codes",
  membershipChecks: "checks",
  jobRequests: "rechecks",
  sweepItems: "sweep items",
  webhookEvents: "webhook deliveries",
  requestsForOthersUnlinked: "rechecks of others unlinked",
};

/**
 * "member 1, sign-ins 2, …" in the order above, then any count this page does not know yet.
 * @param {ErasureReportOut} report
 */
function erasedCounts(report) {
  /** @type {Record<string, unknown>} */
  const body = report ?? {};
  /** @type {Record<string, string | undefined>} */
  const names = ERASED;
  const keys = [...Object.keys(names).filter((key) => key in body), ...Object.keys(body).filter((key) => !(key in names))];
  return keys.map((key) => `${names[key] || key} ${body[key]}`).join(", ");
}

/** @param {SubmitEvent} event */
async function eraseMember(event) {
  event.preventDefault();
  const m = loadedMember;
  if (!m || erasing || eraseConfirm().value.trim() !== m.patreonId) return;
  erasing = true;
  updateEraseButton();
  sayData("Erasing…");
  try {
    const result = await api("delete", "/api/admin/members/{id}", { params: { id: m.id } });
    if (result.ok) {
      if (m === loadedMember) $("member-dialog", HTMLDialogElement).close();
      showNotice(`Erased ${m.name || "the member"} (Patreon id ${m.patreonId}): ${erasedCounts(result.body)}.`);
      await refreshLists();
      return;
    }
    if (m !== loadedMember) return;
    if (result.status === 409) sayData("A check is running, try again in a few seconds.", "error");
    else sayData(problemText(result, "Cannot erase this member"), "error");
  } finally {
    erasing = false;
    updateEraseButton();
  }
}

/**
 * The export and erase controls.
 * @param {() => Promise<unknown>} refresh reloads what an erase changes outside the dialog
 */
export function wireDataRights(refresh) {
  refreshLists = refresh;
  $("export-member").addEventListener("click", guarded(exportMember));
  $("erase-start").addEventListener("click", () => showEraseForm($("erase-form").hidden));
  $("erase-cancel").addEventListener("click", () => showEraseForm(false));
  eraseConfirm().addEventListener("input", updateEraseButton);
  $("erase-form").addEventListener("submit", guarded(eraseMember));
}
