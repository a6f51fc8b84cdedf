// @ts-check
/**
 * The actions a proctor takes on a running session (`POST /sessions/{id}/actions`): warn,
 * extend time, unpair the phone, allow a device change, terminate. Each asks for a reason,
 * which the hub keeps in the session's audit log (and, for a warning, shows the candidate).
 * Terminating asks for a confirmation that defaults to the safe choice.
 */
import { h, modal } from "./ui.js";
import { formDialog, textField, numberField, FieldError } from "./staff-dialogs.js";
import { act } from "./staff-api.js";

/** @typedef {import("./staff-api.js").ActionType} ActionType */
/** @typedef {import("./staff-api.js").ActionBody} ActionBody */
/** @typedef {import("./staff-api.js").AdminAction} AdminAction */

/**
 * @typedef {object} ActionSpec
 * @property {string} button the button on the session page
 * @property {string} title the dialog's title
 * @property {string} intro what the action does, in the dialog
 * @property {string} reasonLabel
 * @property {string} reasonHint
 * @property {string} submit the dialog's submit button
 * @property {boolean} [minutes] asks for minutes (EXTEND_TIME)
 * @property {boolean} [danger] destructive: red button and a confirmation
 */

/** @type {Record<ActionType, ActionSpec>} */
export const ACTIONS = {
  WARN: {
    button: "Warn…",
    title: "Warn the candidate",
    intro: "The candidate sees this message on their exam page at once and must acknowledge it.",
    reasonLabel: "Message to the candidate",
    reasonHint: "Shown to the candidate as written and kept in the action log.",
    submit: "Send warning",
  },
  EXTEND_TIME: {
    button: "Extend time…",
    title: "Extend the time",
    intro: "Moves the end of this candidate's exam later. Their countdown changes at once.",
    reasonLabel: "Reason",
    reasonHint: "Kept in the action log, e.g. \"lost 5 minutes to a network outage\".",
    submit: "Extend time",
    minutes: true,
  },
  UNPAIR_MOBILE: {
    button: "Unpair phone…",
    title: "Unpair the phone",
    intro: "Disconnects the candidate's paired phone. The candidate can pair a phone again from their exam page.",
    reasonLabel: "Reason",
    reasonHint: "Kept in the action log.",
    submit: "Unpair phone",
  },
  ALLOW_DEVICE_CHANGE: {
    button: "Allow device change…",
    title: "Allow a change of computer",
    intro: "The exam stays on the computer it was started on. This lets the candidate resume it once from another computer.",
    reasonLabel: "Reason",
    reasonHint: "Kept in the action log.",
    submit: "Allow device change",
  },
  TERMINATE: {
    button: "Terminate…",
    title: "Terminate the exam",
    intro: "Ends the candidate's exam now. Their answers so far are kept; they cannot continue.",
    reasonLabel: "Reason",
    reasonHint: "Shown to the candidate on their end screen and kept in the action log.",
    submit: "Terminate exam…",
    danger: true,
  },
};

/** The order of the buttons; the destructive one last. */
export const ACTION_ORDER = /** @type {ActionType[]} */ (["WARN", "EXTEND_TIME", "UNPAIR_MOBILE", "ALLOW_DEVICE_CHANGE", "TERMINATE"]);

/** What EXTEND_TIME accepts (the hub: an integer between 1 and 600). */
export const MINUTES = { min: 1, max: 600 };

/**
 * Checks a dialog's input and builds the request body, with the hub's rules, so a mistake is
 * named next to its input instead of coming back as a 422.
 * @param {ActionType} type
 * @param {{reason: string, minutes?: string}} input the raw form values
 * @returns {ActionBody}
 * @throws {FieldError}
 */
export function actionBody(type, input) {
  const reason = input.reason.trim();
  if (!reason) throw new FieldError("reason", type === "WARN" ? "Write the message to the candidate." : "Give a reason: it is kept in the action log.");
  if (reason.length > 2000) throw new FieldError("reason", "At most 2000 characters.");
  if (type !== "EXTEND_TIME") return { actionType: type, reason };
  const raw = (input.minutes || "").trim();
  const minutes = Number(raw);
  if (!/^\d+$/.test(raw) || minutes < MINUTES.min || minutes > MINUTES.max) {
    throw new FieldError("minutes", `Minutes must be a whole number from ${MINUTES.min} to ${MINUTES.max}.`);
  }
  return { actionType: type, reason, payload: { minutes } };
}

/**
 * Opens the action's dialog and sends it.
 * @param {import("./hub-client.js").HubClient} client
 * @param {string} sessionId
 * @param {string} candidate the candidate's name, for the dialog's words
 * @param {ActionType} type
 * @returns {Promise<AdminAction | null>} the recorded action; null when cancelled
 */
export async function runAction(client, sessionId, candidate, type) {
  const spec = ACTIONS[type];
  /** @type {AdminAction | null} */
  let done = null;
  const fields = [textField({ name: "reason", label: spec.reasonLabel, hint: spec.reasonHint })];
  if (spec.minutes) fields.unshift(numberField({ name: "minutes", label: "Extra minutes", min: MINUTES.min, max: MINUTES.max, value: 5 }));
  await formDialog({
    title: `${spec.title}: ${candidate}`,
    intro: h("p", {}, spec.intro),
    fields,
    submitLabel: spec.submit,
    danger: spec.danger,
    submit: async (form) => {
      const data = new FormData(form);
      const body = actionBody(type, { reason: String(data.get("reason") || ""), minutes: String(data.get("minutes") ?? "") });
      if (spec.danger && !(await confirmTerminate(candidate))) return false;
      done = await act(client, sessionId, body);
    },
  });
  return done;
}

/**
 * @param {string} candidate
 * @returns {Promise<boolean>}
 */
async function confirmTerminate(candidate) {
  const { result } = modal({
    title: `Terminate ${candidate}'s exam?`,
    body: h("p", {}, "The exam ends now and cannot be resumed. This cannot be undone."),
    buttons: [
      { label: "Keep the exam running", value: "keep" },
      { label: "Yes, terminate the exam", value: "terminate", danger: true },
    ],
    focus: "keep",
  });
  return (await result) === "terminate";
}

/**
 * How an action reads in the log.
 * @param {AdminAction} a
 * @returns {string}
 */
export function actionText(a) {
  const words = {
    WARN: "Warning",
    AUTO_WARN: "Automatic warning",
    TERMINATE: "Terminated",
    AUTO_TERMINATE: "Terminated automatically",
    EXTEND_TIME: "Time extended",
    UNPAIR_MOBILE: "Phone unpaired",
    ALLOW_DEVICE_CHANGE: "Device change allowed",
    REVIEW: "Reviewed",
    GRADE: "Graded",
  };
  let text = /** @type {Record<string, string>} */ (words)[a.actionType] || a.actionType;
  const p = a.payload || {};
  if (a.actionType === "EXTEND_TIME" && typeof p.minutes === "number") text += ` by ${p.minutes} min`;
  if (a.actionType === "REVIEW" && typeof p.decision === "string") text += `: ${p.decision.toLowerCase()}`;
  return text;
}
