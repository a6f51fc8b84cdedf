// @ts-check
/**
 * The staff routes of docs/CONTRACT.md ("Proctor and admin", events, reviews, grades) as typed
 * functions over {@link HubClient.api}. hub-client.js types the candidate routes; these are
 * the ones only the staff views use.
 */
import { ApiError } from "./hub-client.js";
import { allPages } from "./staff-timeline.js";

/** @typedef {import("./hub-client.js").HubClient} HubClient */
/** @typedef {import("./staff-board.js").StaffSession} StaffSession */
/** @typedef {import("./staff-timeline.js").TimelineEvent} TimelineEvent */
/** @typedef {import("./staff-timeline.js").EventQuery} EventQuery */
/** @typedef {import("./staff-recordings.js").Recording} Recording */
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
 * @property {boolean} [recordMedia] whether the relay records the sessions' media (default true)
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
 * Every event of a session, oldest first (500 a request, the API's maximum).
 * @param {HubClient} client
 * @param {string} sessionId
 * @param {string} until RFC 3339, exclusive: the session's end and then some (events may be
 *   timestamped up to 30 s ahead of the hub's clock)
 * @returns {Promise<TimelineEvent[]>}
 */
export function allSessionEvents(client, sessionId, until) {
  return allPages((cursor) => sessionEvents(client, sessionId, { until, limit: 500, ...(cursor ? { cursor } : {}) }));
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

/**
 * A session's recorded segments (`GET /sessions/{id}/recordings`), by `startedAt`.
 * @param {HubClient} client
 * @param {string} sessionId
 * @returns {Promise<Recording[]>}
 */
export async function sessionRecordings(client, sessionId) {
  /** @type {{items: Recording[]}} */
  const list = await client.api("GET", `/sessions/${seg(sessionId)}/recordings`);
  return list.items;
}

/**
 * One recorded segment's WebM (`GET /sessions/{id}/recordings/{recordingId}`), whole. A
 * `<video src>` cannot send the bearer token, so the file is downloaded with it and played from
 * an object URL. Like {@link HubClient.api}, a 401 refreshes the tokens and tries once more.
 * @param {HubClient} client
 * @param {string} sessionId
 * @param {string} recordingId
 * @param {AbortSignal} [signal]
 * @returns {Promise<Blob>}
 * @throws {ApiError} (an abort rejects with the signal's reason)
 */
export async function recordingBlob(client, sessionId, recordingId, signal) {
  for (let attempt = 0; ; attempt++) {
    const token = await client.accessToken();
    let res;
    try {
      res = await client.fetchImpl(`${client.baseUrl}/api/v1/sessions/${seg(sessionId)}/recordings/${seg(recordingId)}`, {
        headers: { authorization: `Bearer ${token}` },
        signal,
      });
    } catch (e) {
      if (signal?.aborted) throw e;
      throw new ApiError(0, "NETWORK", "The hub could not be reached");
    }
    if (res.status === 401 && attempt === 0 && client.auth) {
      await client.refresh();
      continue;
    }
    if (!res.ok) throw await ApiError.from(res);
    return res.blob();
  }
}
