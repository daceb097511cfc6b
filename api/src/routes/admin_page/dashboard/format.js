// @ts-check
// How dates, statuses and flags read on the page.
import { el } from "./dom.js";

/** @typedef {import("./api.js").Schemas["MemberSummary"]} MemberSummary */

/** @param {string | undefined} iso */
export function dateTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "never";
}

/** @param {string | undefined} iso */
export function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  const text =
    s < 45 ? "just now"
    : s < 3600 ? `${Math.round(s / 60)} min`
    : s < 86400 ? `${Math.round(s / 3600)} h`
    : `${Math.round(s / 86400)} d`;
  if (text === "just now") return text;
  return future ? `in ${text}` : `${text} ago`;
}

/**
 * A `<time>` reading "3 h ago" (or the full date), the full date as its tooltip.
 * @param {string | undefined} iso
 */
export function timeEl(iso, relative = true) {
  if (!iso) return el("span", { className: "muted" }, "never");
  return el("time", { dateTime: iso, title: dateTime(iso) }, relative ? ago(iso) : dateTime(iso));
}

/**
 * paying / stale / not paying, as the gate answers `isPaidMember`.
 * @param {MemberSummary} m
 */
function statusOf(m) {
  if (m.isPaidMember) return { key: "paying", label: "Paying" };
  // Paying at the last check, but that check is older than STALE_AFTER_DAYS.
  if (m.membershipActive) return { key: "stale", label: "Stale" };
  return { key: "not-paying", label: "Not paying" };
}

/** @param {MemberSummary} m */
export function statusBadge(m) {
  const { key, label } = statusOf(m);
  return el("span", { className: `badge badge-${key}`, dataset: { status: key } }, label);
}

/** @param {boolean | null | undefined} value */
export const yesNo = (value) => (value === null || value === undefined ? "?" : value ? "yes" : "no");
