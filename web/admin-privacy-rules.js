// @ts-check
/**
 * The rules of the users page's privacy actions, DOM-free and unit-tested
 * (web/test/admin-privacy.test.mjs): the export's file name, how an erased user looks, what
 * the erase dialog accepts before anything is sent, and what an erasure did, in words. The
 * hub's refusals (`LEGAL_HOLD`, …) are worded in admin-form.js with the other error codes.
 */
import { FieldError } from "./staff-dialogs.js";

/** @typedef {import("./admin-api.js").AdminUser} AdminUser */
/** @typedef {import("./admin-api.js").Erasure} Erasure */

/** The longest reason the hub keeps (src/http/privacy.rs). */
export const REASON_MAX = 2000;

/**
 * The name the export is saved under (the hub's Content-Disposition says the same).
 * @param {string} userId
 */
export function exportFileName(userId) {
  // An id is a UUID; anything else is kept to characters every file system accepts.
  return `proctor-hub-export-${String(userId).replace(/[^A-Za-z0-9._-]/g, "_")}.json`;
}

/**
 * Whether the user's personal data was erased: the hub renames them "Erased user" with the
 * address `erased-<id>@erased.invalid`.
 * @param {Pick<AdminUser, "email">} user
 */
export function isErased(user) {
  return /^erased-[^@]*@erased\.invalid$/i.test(user.email);
}

/**
 * Checks the erase dialog and builds `POST /users/{id}/erase`'s body. The admin types the
 * user's email to confirm (any case, spaces around ignored), so the wrong row is not erased by
 * a slip.
 * @param {{reason: string, confirmEmail: string}} form
 * @param {string} email the user's current email
 * @returns {{reason: string}}
 * @throws {FieldError} naming `reason` or `confirmEmail`
 */
export function eraseBody(form, email) {
  const reason = form.reason.trim();
  if (!reason) throw new FieldError("reason", "Give the reason for erasing, e.g. the request's reference.");
  if ([...reason].length > REASON_MAX) {
    throw new FieldError("reason", `The reason is too long (at most ${REASON_MAX} characters).`);
  }
  const typed = form.confirmEmail.trim().toLowerCase();
  if (!typed) throw new FieldError("confirmEmail", `Type the user's email (${email}) to confirm.`);
  if (typed !== email.trim().toLowerCase()) {
    throw new FieldError("confirmEmail", `That is not this user's email: type ${email} exactly to confirm.`);
  }
  return { reason };
}

/**
 * What an erasure did, row by row, for the dialog that reports it.
 * @param {Erasure} e
 * @returns {[string, number][]}
 */
export function erasureRows(e) {
  return [
    ["Sessions kept, without device fingerprints and IP addresses", e.sessions],
    ["Answers whose contents were removed (points kept)", e.answers],
    ["Proctoring events stripped of their details", e.events],
    ["Stored files (artifacts) deleted", e.artifacts],
    ["Recording segments deleted", e.recordings],
    ["Logins ended and deleted", e.logins],
    ["Audit log entries with the name and email cut out", e.auditRows],
  ];
}
