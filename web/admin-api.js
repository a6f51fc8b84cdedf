// @ts-check
/**
 * The admin routes of docs/CONTRACT.md (users, exams, questions, assignments, webhooks, and a
 * user's data export and erasure) as typed functions over {@link HubClient.api}. Kept out of
 * hub-client.js: only the admin views need them, and they load on first use.
 */
import { ApiError } from "./hub-client.js";

/** @typedef {import("./hub-client.js").HubClient} HubClient */
/** @typedef {"CANDIDATE" | "PROCTOR" | "ADMIN"} UserRole */
/** @typedef {"DRAFT" | "PUBLISHED" | "ARCHIVED"} ExamStatus */
/** @typedef {import("./hub-client.js").QuestionType} QuestionType */
/** @typedef {import("./hub-client.js").McqOption} McqOption */
/**
 * @template T
 * @typedef {import("./hub-client.js").Page<T>} Page
 */
/**
 * @typedef {object} AdminUser One entry of `GET /users`.
 * @property {string} id
 * @property {string} email
 * @property {string} name
 * @property {UserRole} role
 * @property {boolean} isActive
 * @property {string} createdAt
 */
/**
 * @typedef {object} AdminExam `GET /exams/{id}` for staff.
 * @property {string} id
 * @property {string} title
 * @property {string} instructions
 * @property {ExamStatus} status
 * @property {number} durationMinutes
 * @property {string} startsAt
 * @property {string} endsAt
 * @property {boolean} randomizeQuestions
 * @property {boolean} [recordMedia] the relay records each session's camera, microphone, screen
 *   and phone camera for review (default true; absent from a hub that predates recordings)
 */
/**
 * @typedef {object} ExamFields What an admin writes about an exam (`POST`/`PATCH /exams`).
 * @property {string} title
 * @property {string} instructions
 * @property {number} durationMinutes
 * @property {string} startsAt RFC 3339
 * @property {string} endsAt RFC 3339
 * @property {boolean} randomizeQuestions
 * @property {boolean} recordMedia
 */
/**
 * @typedef {object} AdminQuestion `GET /exams/{id}/questions` (with the answer key).
 * @property {string} id
 * @property {string} examId
 * @property {QuestionType} type
 * @property {string} prompt
 * @property {McqOption[]} options empty unless MCQ
 * @property {any} answerKey MCQ `{correct: [optionId…]}`; CODING/SUBJECTIVE `{rubric}` or null
 * @property {number} points
 * @property {number} orderIndex
 */
/**
 * @typedef {object} QuestionFields What an admin writes about a question.
 * @property {QuestionType} type
 * @property {string} prompt
 * @property {McqOption[]} options
 * @property {any} answerKey
 * @property {number} points
 * @property {number} [orderIndex]
 */
/**
 * @typedef {object} Assignment One entry of `GET /exams/{id}/assignments`.
 * @property {string} id
 * @property {string} candidateId
 * @property {string} name
 * @property {string} email
 * @property {number} extraTimeMinutes
 * @property {string} assignedAt
 */

/**
 * @typedef {object} WebhookEndpoint One entry of `GET /webhooks` (never with its secret).
 * @property {string} id
 * @property {string} url
 * @property {string} description
 * @property {string[]} events the subscribed event types
 * @property {boolean} enabled
 * @property {string | null} disabledReason "disabled by an admin", or "failing since <UTC>"
 *   when the hub disabled it after a day of failures
 * @property {string | null} disabledAt
 * @property {string | null} failingSince set while every attempt since then failed
 * @property {string} createdAt
 */
/**
 * @typedef {WebhookEndpoint & {secret: string}} CreatedWebhook `POST /webhooks`: the only
 *   answer that holds the `whsec_` signing secret
 */
/** @typedef {"PENDING" | "DELIVERED" | "FAILED"} DeliveryState */
/**
 * @typedef {object} WebhookDelivery One entry of `GET /webhooks/{id}/deliveries`.
 * @property {string} id
 * @property {string} messageId
 * @property {string} eventType
 * @property {string | null} sessionId
 * @property {DeliveryState} state
 * @property {number} attempts
 * @property {string | null} nextAttemptAt only while PENDING
 * @property {number | null} lastStatus
 * @property {string | null} lastError
 * @property {string | null} deliveredAt
 * @property {string} createdAt
 */
/**
 * @typedef {object} DeliveryAttempt
 * @property {string} attemptedAt
 * @property {number | null} status the receiver's HTTP status, if it answered
 * @property {string | null} error why it failed (timeout, connection refused, "HTTP 503")
 * @property {number} durationMs
 * @property {string} node the hub process that sent it
 */
/**
 * @typedef {WebhookDelivery & {body: unknown, attemptsMade: DeliveryAttempt[]}} WebhookDeliveryDetail
 *   `GET /webhooks/{id}/deliveries/{deliveryId}`: the JSON sent and every attempt, oldest first
 */
/**
 * @typedef {object} Erasure `POST /users/{id}/erase`: what was removed.
 * @property {string} userId
 * @property {number} sessions
 * @property {number} answers
 * @property {number} events
 * @property {number} artifacts
 * @property {number} recordings
 * @property {number} logins
 * @property {number} auditRows
 * @property {string} erasedAt
 */

/**
 * `?a=1&b=2`, leaving out empty values (an empty `q` or `role` means "all").
 * @param {Record<string, string | number | null | undefined>} params
 */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

const enc = encodeURIComponent;

// --- users ---------------------------------------------------------------------------------

/**
 * @param {HubClient} client
 * @param {{role?: string, q?: string, cursor?: string | null, limit?: number}} [filter]
 * @returns {Promise<Page<AdminUser>>}
 */
export function listUsers(client, { role, q, cursor, limit = 50 } = {}) {
  return client.api("GET", `/users${query({ role, q: q?.trim(), cursor, limit })}`);
}

/**
 * @param {HubClient} client
 * @param {{name: string, email: string, password: string, role: UserRole}} user
 * @returns {Promise<AdminUser>} 409 `EMAIL_TAKEN`, 422 naming the field
 */
export function createUser(client, user) {
  return client.api("POST", "/users", user);
}

/** @param {HubClient} client @param {string} id @returns {Promise<AdminUser>} */
export function getUser(client, id) {
  return client.api("GET", `/users/${enc(id)}`);
}

/**
 * Deactivating also logs the user out everywhere (the hub revokes their tokens and sockets).
 * @param {HubClient} client
 * @param {string} id
 * @param {boolean} isActive
 * @returns {Promise<AdminUser>} 409 `CANNOT_DEMOTE_SELF` for one's own account
 */
export function setUserActive(client, id, isActive) {
  return client.api("PATCH", `/users/${enc(id)}`, { isActive });
}

// --- exams ---------------------------------------------------------------------------------

/**
 * @param {HubClient} client
 * @param {{status?: string, cursor?: string | null, limit?: number}} [filter]
 * @returns {Promise<Page<AdminExam>>}
 */
export function listExams(client, { status, cursor, limit = 50 } = {}) {
  return client.api("GET", `/exams${query({ status, cursor, limit })}`);
}

/** @param {HubClient} client @param {string} id @returns {Promise<AdminExam>} */
export function getExam(client, id) {
  return client.api("GET", `/exams/${enc(id)}`);
}

/** @param {HubClient} client @param {ExamFields} fields @returns {Promise<AdminExam>} */
export function createExam(client, fields) {
  return client.api("POST", "/exams", fields);
}

/**
 * @param {HubClient} client
 * @param {string} id
 * @param {Partial<ExamFields>} fields
 * @returns {Promise<AdminExam>}
 */
export function updateExam(client, id, fields) {
  return client.api("PATCH", `/exams/${enc(id)}`, fields);
}

/**
 * DRAFT → PUBLISHED (422 naming `questions` when it has none).
 * @param {HubClient} client @param {string} id @returns {Promise<AdminExam>}
 */
export function publishExam(client, id) {
  return client.api("POST", `/exams/${enc(id)}/publish`);
}

/** PUBLISHED → ARCHIVED. @param {HubClient} client @param {string} id @returns {Promise<AdminExam>} */
export function archiveExam(client, id) {
  return client.api("POST", `/exams/${enc(id)}/archive`);
}

// --- questions (every change: 409 `EXAM_NOT_DRAFT` once published) -----------------------

/** @param {HubClient} client @param {string} examId @returns {Promise<Page<AdminQuestion>>} */
export function listQuestions(client, examId) {
  return client.api("GET", `/exams/${enc(examId)}/questions`);
}

/**
 * @param {HubClient} client @param {string} examId @param {QuestionFields} fields
 * @returns {Promise<AdminQuestion>}
 */
export function createQuestion(client, examId, fields) {
  return client.api("POST", `/exams/${enc(examId)}/questions`, fields);
}

/**
 * @param {HubClient} client @param {string} examId @param {string} questionId
 * @param {Partial<QuestionFields>} fields
 * @returns {Promise<AdminQuestion>}
 */
export function updateQuestion(client, examId, questionId, fields) {
  return client.api("PATCH", `/exams/${enc(examId)}/questions/${enc(questionId)}`, fields);
}

/** @param {HubClient} client @param {string} examId @param {string} questionId @returns {Promise<void>} */
export function deleteQuestion(client, examId, questionId) {
  return client.api("DELETE", `/exams/${enc(examId)}/questions/${enc(questionId)}`);
}

// --- assignments ---------------------------------------------------------------------------

/**
 * @param {HubClient} client @param {string} examId
 * @param {{cursor?: string | null, limit?: number}} [page]
 * @returns {Promise<Page<Assignment>>}
 */
export function listAssignments(client, examId, { cursor, limit = 100 } = {}) {
  return client.api("GET", `/exams/${enc(examId)}/assignments${query({ cursor, limit })}`);
}

/**
 * Adds candidates (or sets the extra time of ones already assigned); the others stay. By
 * email, every unknown or inactive address is named in one 422 (field `emails`) and nothing
 * is assigned.
 * @param {HubClient} client
 * @param {string} examId
 * @param {{emails: string[]} | {candidateIds: string[]}} who
 * @param {number | null} [extraTimeMinutes] null: leave as it is (0 for new ones)
 * @returns {Promise<Page<Assignment>>} every assignment of the exam
 */
export function assign(client, examId, who, extraTimeMinutes = null) {
  return client.api("PUT", `/exams/${enc(examId)}/assignments`, {
    ...who,
    ...(extraTimeMinutes == null ? {} : { extraTimeMinutes }),
  });
}

/** @param {HubClient} client @param {string} examId @param {string} candidateId @returns {Promise<void>} */
export function unassign(client, examId, candidateId) {
  return client.api("DELETE", `/exams/${enc(examId)}/assignments/${enc(candidateId)}`);
}

// --- webhooks ------------------------------------------------------------------------------

/**
 * @param {HubClient} client
 * @param {{cursor?: string | null, limit?: number}} [page]
 * @returns {Promise<Page<WebhookEndpoint>>} oldest first
 */
export function listWebhooks(client, { cursor, limit = 100 } = {}) {
  return client.api("GET", `/webhooks${query({ cursor, limit })}`);
}

/** @param {HubClient} client @param {string} id @returns {Promise<WebhookEndpoint>} */
export function getWebhook(client, id) {
  return client.api("GET", `/webhooks/${enc(id)}`);
}

/**
 * @param {HubClient} client
 * @param {import("./admin-webhook-rules.js").CreateWebhookBody} body
 * @returns {Promise<CreatedWebhook>} 422 `URL_NOT_ALLOWED` (field `url`) or `VALIDATION_FAILED`
 */
export function createWebhook(client, body) {
  return client.api("POST", "/webhooks", body);
}

/**
 * `enabled: false` disables (reason "disabled by an admin"); `true` enables again and makes the
 * deliveries that waited due now.
 * @param {HubClient} client
 * @param {string} id
 * @param {{url?: string, events?: string[], description?: string, enabled?: boolean}} fields
 * @returns {Promise<WebhookEndpoint>}
 */
export function updateWebhook(client, id, fields) {
  return client.api("PATCH", `/webhooks/${enc(id)}`, fields);
}

/** With its deliveries. @param {HubClient} client @param {string} id @returns {Promise<void>} */
export function deleteWebhook(client, id) {
  return client.api("DELETE", `/webhooks/${enc(id)}`);
}

/**
 * Queues a `webhook.ping` to the endpoint.
 * @param {HubClient} client @param {string} id
 * @returns {Promise<{deliveryId: string}>} 409 `WEBHOOK_DISABLED` while disabled
 */
export function pingWebhook(client, id) {
  return client.api("POST", `/webhooks/${enc(id)}/ping`);
}

/**
 * @param {HubClient} client
 * @param {string} id
 * @param {{state?: string, sessionId?: string, cursor?: string | null, limit?: number}} [filter]
 * @returns {Promise<Page<WebhookDelivery>>} newest first
 */
export function listDeliveries(client, id, { state, sessionId, cursor, limit = 25 } = {}) {
  return client.api("GET", `/webhooks/${enc(id)}/deliveries${query({ state, sessionId, cursor, limit })}`);
}

/**
 * @param {HubClient} client @param {string} id @param {string} deliveryId
 * @returns {Promise<WebhookDeliveryDetail>}
 */
export function getDelivery(client, id, deliveryId) {
  return client.api("GET", `/webhooks/${enc(id)}/deliveries/${enc(deliveryId)}`);
}

/**
 * Makes the delivery PENDING and due now, whatever its state.
 * @param {HubClient} client @param {string} id @param {string} deliveryId
 * @returns {Promise<{deliveryId: string}>}
 */
export function redeliver(client, id, deliveryId) {
  return client.api("POST", `/webhooks/${enc(id)}/deliveries/${enc(deliveryId)}/redeliver`);
}

// --- privacy -------------------------------------------------------------------------------

/**
 * Everything the hub holds about a user (`GET /users/{id}/export`), as a file to save. A link
 * cannot send the bearer token, so it is downloaded here; like {@link HubClient.api}, a 401
 * refreshes the tokens and tries once more.
 * @param {HubClient} client
 * @param {string} id
 * @returns {Promise<Blob>}
 * @throws {ApiError}
 */
export async function userExport(client, id) {
  for (let attempt = 0; ; attempt++) {
    const token = await client.accessToken();
    let res;
    try {
      res = await client.fetchImpl(`${client.baseUrl}/api/v1/users/${enc(id)}/export`, {
        headers: { authorization: `Bearer ${token}`, accept: "application/json" },
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "NETWORK", "The hub could not be reached");
    }
    if (res.status === 401 && attempt === 0 && client.auth) {
      await client.refresh();
      continue;
    }
    if (!res.ok) throw await ApiError.from(res);
    try {
      // The export is streamed: a failure midway ends the body early, and reading it fails.
      return await res.blob();
    } catch {
      throw new Error("The export was cut off before its end. Try again.");
    }
  }
}

/**
 * Erases a user's personal data; scores and review decisions stay on the now pseudonymous id.
 * @param {HubClient} client
 * @param {string} id
 * @param {string} reason
 * @returns {Promise<Erasure>} 409 `LEGAL_HOLD`, `SESSION_ACTIVE`, `ALREADY_ERASED`; 403
 *   `CANNOT_ERASE_SELF`
 */
export function eraseUser(client, id, reason) {
  return client.api("POST", `/users/${enc(id)}/erase`, { reason });
}
