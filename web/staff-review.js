// @ts-check
/**
 * The rules of the review page, apart from its DOM: which grades a session has (staff read
 * them with the session), how an MCQ answer scores (the hub's rule: full points only for the
 * exact set), and what a grader may type.
 */
import { FieldError } from "./staff-dialogs.js";

/** @typedef {import("./hub-client.js").AnswerResponse} AnswerResponse */

/**
 * @param {import("./hub-client.js").Session} session as staff read it (with `grades`)
 * @returns {Map<string, number>} question id → the points it has now
 */
export function gradesOf(session) {
  return new Map(Object.entries(session.grades || {}).map(([q, g]) => [q, g.points]));
}

/**
 * @typedef {object} McqVerdict
 * @property {"correct" | "incorrect" | "unanswered" | "unknown"} verdict "unknown" when there
 *   is no answer key to compare with
 * @property {number | null} points
 */

/**
 * @param {string[] | undefined} selected the candidate's options
 * @param {string[] | undefined} correct the answer key's options
 * @param {number} max the question's points
 * @returns {McqVerdict}
 */
export function mcqVerdict(selected, correct, max) {
  if (!selected || selected.length === 0) return { verdict: "unanswered", points: 0 };
  if (!correct) return { verdict: "unknown", points: null };
  const a = new Set(selected);
  const b = new Set(correct);
  const exact = a.size === b.size && [...a].every((x) => b.has(x));
  return exact ? { verdict: "correct", points: max } : { verdict: "incorrect", points: 0 };
}

/**
 * Reads a grade typed by an admin, with the hub's rules (`PUT /sessions/{id}/grades`): a number
 * from 0 to the question's points; an unanswered question can only get 0.
 * @param {string} raw the input's value
 * @param {number} max
 * @param {boolean} answered
 * @param {string} field the input's name, for the error
 * @returns {number | null} null when left empty (not graded)
 * @throws {FieldError}
 */
export function parsePoints(raw, max, answered, field) {
  const text = raw.trim().replace(",", ".");
  if (text === "") return null;
  const points = Number(text);
  if (!Number.isFinite(points) || points < 0 || points > max) throw new FieldError(field, `Points must be a number from 0 to ${max}.`);
  if (!answered && points !== 0) throw new FieldError(field, "An unanswered question can only be given 0 points.");
  return points;
}

/**
 * @param {AnswerResponse | undefined | null} response
 * @returns {boolean} whether the candidate answered (an empty text is no answer)
 */
export function answered(response) {
  if (!response) return false;
  if ("selected" in response) return response.selected.length > 0;
  if ("code" in response) return response.code.trim() !== "";
  if ("text" in response) return response.text.trim() !== "";
  return false;
}
