// @ts-check
/**
 * The staff routes of docs/CONTRACT.md ("Proctor and admin", events, reviews, grades) as typed
 * functions over {@link HubClient.api}. hub-client.js types the candidate routes; these are
 * the ones only the staff views use.
 */
import { allPages } from "./staff-timeline.js";

/** @typedef {import("./hub-client.js").HubClient} HubClient */
/** @typedef {import("./staff-board.js").StaffSession} StaffSession */
/** @typedef {import("./staff-timeline.js").TimelineEvent} TimelineEvent */
/** @typedef {import("./staff-timeline.js").EventQuery} EventQuery */
/**
 * @template T
 * @typedef {import("./hub-client.js").Page<T>} Page
 */
/**
 * @typedef {object} ExamDetail `GET /exams/{id}`.
 * @property {string} id
 * @property {string} title
 * @property {string} [instructions]
 * @property {"DRAFT" | "PUBLISHED" | "ARCHIVED"} status
 * @property {number} durationMinutes
 * @property {string} startsAt
 * @property {string} endsAt
 */
/**
 * @typedef {object} StaffQuestion `GET /exams/{id}/questions` (staff see the answer keys).
 * @property {string} id
 * @property {import("./hub-client.js").QuestionType} type
 * @property {string} prompt
 * @property {{id: string, text: string}[] | null} options
 * @property {{correct?: string[]} | null} [answerKey]
 * @property {number} points
 */
/**
 * @typedef {object} AdminAction `GET /sessions/{id}/actions` (oldest first), `POST …/actions`.
 * @property {string} id
 * @property {string | null} sessionId
 * @property {string | null} actorId null: the hub itself (AUTO_WARN, AUTO_TERMINATE)
 * @property {string} actionType WARN, TERMINATE, EXTEND_TIME, UNPAIR_MOBILE,
 *   ALLOW_DEVICE_CHANGE, REVIEW, GRADE, AUTO_WARN, AUTO_TERMINATE, …
 * @property {string} reason
 * @property {Record<string, any> | null} payload
 * @property {string} createdAt
 */
/** @typedef {"WARN" | "TERMINATE" | "EXTEND_TIME" | "UNPAIR_MOBILE" | "ALLOW_DEVICE_CHANGE"} ActionType */
/** @typedef {{actionType: ActionType, reason: string, payload?: {minutes: number}}} ActionBody */
/** @typedef {{objectiveScore: number, subjectiveScore: number, finalScore: number, gradedAt: string | null}} Score */
/**
 * @typedef {object} EventSummary `GET /sessions/{id}/events/summary`.
 * @property {number} total
 * @property {Record<string, number>} byType
 * @property {Record<string, number>} bySource
 * @property {number} violationScore
 */
/** @typedef {"APPROVED" | "REJECTED"} Decision */

/** @param {string} id */
const seg = (id) => encodeURIComponent(id);

/**
 * @param {Record<string, string | number | boolean | null | undefined>} params
 * @returns {string} "?a=1&b=2", or "" when nothing is set
 */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * @param {HubClient} client
 * @param {string} examId
 * @returns {Promise<ExamDetail>}
 */
export function getExam(client, examId) {
  return client.api("GET", `/exams/${seg(examId)}`);
}

/**
 * @param {HubClient} client
 * @param {string} examId
 * @returns {Promise<StaffQuestion[]>}
 */
export async function examQuestions(client, examId) {
  /** @type {Page<StaffQuestion>} */
  const page = await client.api("GET", `/exams/${seg(examId)}/questions`);
  return page.items;
}

/**
 * One page of an exam's sessions.
 * @param {HubClient} client
 * @param {string} examId
 * @param {{status?: string, ended?: boolean, reviewDecision?: string, limit?: number, cursor?: string | null}} [filters]
 * @returns {Promise<Page<StaffSession>>}
 */
export function examSessions(client, examId, filters = {}) {
  return client.api("GET", `/exams/${seg(examId)}/sessions${query(filters)}`);
}

/**
 * Every session of an exam (all pages, 500 at a time: the API's maximum).
 * @param {HubClient} client
 * @param {string} examId
 * @returns {Promise<StaffSession[]>}
 */
export function allExamSessions(client, examId) {
  return allPages((cursor) => examSessions(client, examId, { limit: 500, cursor }));
}

/**
 * @param {HubClient} client
 * @param {string} sessionId
 * @param {EventQuery} q
 * @returns {Promise<Page<TimelineEvent>>}
 */
export function sessionEvents(client, sessionId, q) {
  return client.api("GET", `/sessions/${seg(sessionId)}/events${query(q)}`);
}

/**
 * @param {HubClient} client
 * @param {string} sessionId
 * @returns {Promise<EventSummary>}
 */
export function eventSummary(client, sessionId) {
  return client.api("GET", `/sessions/${seg(sessionId)}/events/summary`);
}

/**
 * Every action on a session, oldest first.
 * @param {HubClient} client
 * @param {string} sessionId
 * @returns {Promise<AdminAction[]>}
 */
export function sessionActions(client, sessionId) {
  return allPages((cursor) => client.api("GET", `/sessions/${seg(sessionId)}/actions${query({ limit: 500, cursor })}`));
}

/**
 * @param {HubClient} client
 * @param {string} sessionId
 * @param {ActionBody} body
 * @returns {Promise<AdminAction>}
 */
export function act(client, sessionId, body) {
  return client.api("POST", `/sessions/${seg(sessionId)}/actions`, body);
}

/**
 * @param {HubClient} client
 * @param {string} sessionId
 * @param {Decision} decision
 * @param {string} reason
 */
export function decide(client, sessionId, decision, reason) {
  return client.api("POST", `/sessions/${seg(sessionId)}/review`, { decision, reason });
}

/**
 * @param {HubClient} client
 * @param {string} sessionId
 * @param {{questionId: string, points: number}[]} grades
 * @returns {Promise<Score>}
 */
export function grade(client, sessionId, grades) {
  return client.api("PUT", `/sessions/${seg(sessionId)}/grades`, { grades });
}

/**
 * @param {HubClient} client
 * @param {string} sessionId
 * @returns {Promise<Score>}
 */
export function score(client, sessionId) {
  return client.api("GET", `/sessions/${seg(sessionId)}/score`);
}
