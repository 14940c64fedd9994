// api.js — the only place that talks HTTP to the ticketing API.
//
// Every call goes through `request`, which adds the headers the contract asks for and turns
// every failure (HTTP error, non-JSON body, network failure) into an `ApiError` carrying the
// contract's `code` and `message`, so callers can show exactly what the server said.

const TOKEN_KEY = 'onsale-practice.access-token';

/** The access token lives in sessionStorage: it survives a reload but not a closed tab. */
export const session = {
  token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  setToken(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** An error answered by the API (or a transport failure dressed the same way). */
export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status; // HTTP status, 0 when the server could not be reached
    this.code = code; // the contract's error code, e.g. SEAT_UNAVAILABLE
    this.details = details ?? {};
  }
}

/** A random key for the Idempotency-Key header (crypto.randomUUID needs a secure context). */
export function newIdempotencyKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Sends one request and returns the parsed JSON body (null for 204).
 *
 * @param {string} method  HTTP method
 * @param {string} path    relative path, e.g. `/auth/login`
 * @param {object} [opts]
 * @param {*}      [opts.body]            sent as JSON when given
 * @param {boolean}[opts.auth=true]       add `Authorization: Bearer` when logged in
 * @param {string} [opts.queueToken]      sent as `X-Queue-Token`
 * @param {string} [opts.idempotencyKey]  sent as `Idempotency-Key`
 * @param {function} [opts.onResponse]    called with the Response as soon as headers arrive
 */
export async function request(method, path, opts = {}) {
  const { body, auth = true, queueToken, idempotencyKey, onResponse } = opts;
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const token = session.token();
  if (auth && token) headers.Authorization = `Bearer ${token}`;
  if (queueToken) headers['X-Queue-Token'] = queueToken;
  if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;

  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, 'NETWORK_ERROR', `Could not reach the server: ${err.message}`);
  }
  onResponse?.(response);

  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      throw new ApiError(
        response.status,
        response.ok ? 'BAD_RESPONSE' : `HTTP_${response.status}`,
        `The server answered ${response.status} ${response.statusText} with a body that is not JSON.`,
      );
    }
  }
  if (!response.ok) {
    const error = data?.error;
    throw new ApiError(
      response.status,
      error?.code ?? `HTTP_${response.status}`,
      error?.message ?? `The request failed with status ${response.status}.`,
      error?.details,
    );
  }
  return data;
}

// Thin named wrappers, one per endpoint, so app code reads like the contract.
export const api = {
  health: (onResponse) => request('GET', '/health', { auth: false, onResponse }),
  signup: (username, password, name) =>
    request('POST', '/users', { auth: false, body: { username, password, name } }),
  login: (username, password) =>
    request('POST', '/auth/login', { auth: false, body: { username, password } }),
  me: () => request('GET', '/me'),

  concerts: (cursor) =>
    request('GET', cursor ? `/concerts?cursor=${encodeURIComponent(cursor)}` : '/concerts', { auth: false }),
  concert: (id) => request('GET', `/concerts/${encodeURIComponent(id)}`, { auth: false }),
  importConcert: (url) => request('POST', '/performances/import', { body: { url } }),
  schedules: (concertId, queueToken) =>
    request('GET', `/concerts/${encodeURIComponent(concertId)}/schedules`, { queueToken }),
  /** One date's seats; with `zone`, only that zone's 500 (seats 500·zone+1 to 500·zone+500). */
  seats: (scheduleId, queueToken, zone) =>
    request('GET', `/schedules/${encodeURIComponent(scheduleId)}/seats${zone === undefined || zone === null ? '' : `?zone=${encodeURIComponent(zone)}`}`, { queueToken }),
  zones: (scheduleId, queueToken) =>
    request('GET', `/schedules/${encodeURIComponent(scheduleId)}/zones`, { queueToken }),

  enterQueue: (concertId) => request('POST', '/queue/tokens', { body: { concert_id: concertId } }),
  queueStatus: (queueToken) => request('GET', '/queue/tokens/current', { queueToken }),
  leaveQueue: (queueToken) => request('DELETE', '/queue/tokens/current', { queueToken }),
  /** Public and cached a second at the edge: the line's progress, for the page to place itself. */
  queueProgress: (concertId) =>
    request('GET', `/queue/progress/${encodeURIComponent(concertId)}`, { auth: false }),

  hold: (scheduleId, seatNos, queueToken) =>
    request('POST', '/reservations', { queueToken, body: { schedule_id: scheduleId, seat_nos: seatNos } }),
  reservation: (id) => request('GET', `/reservations/${encodeURIComponent(id)}`),
  release: (id) => request('DELETE', `/reservations/${encodeURIComponent(id)}`),
  cancel: (id) => request('POST', `/reservations/${encodeURIComponent(id)}/cancel`),
  cancellationTerms: (id) => request('GET', `/reservations/${encodeURIComponent(id)}/cancellation`),
  joinWaitlist: (scheduleId, count, queueToken) =>
    request('POST', `/schedules/${encodeURIComponent(scheduleId)}/waitlist`, { queueToken, body: { count } }),
  waitlist: (scheduleId) => request('GET', `/schedules/${encodeURIComponent(scheduleId)}/waitlist`),
  myReservations: () => request('GET', '/me/reservations'),

  createRun: (body) => request('POST', '/practice/runs', { body }),
  run: (runId) => request('GET', `/practice/runs/${encodeURIComponent(runId)}`, { auth: false }),
  captcha: (runId, queueToken) =>
    request('POST', `/practice/runs/${encodeURIComponent(runId)}/captcha`, { queueToken }),
  answerCaptcha: (runId, captchaId, answer, queueToken) =>
    request('POST', `/practice/runs/${encodeURIComponent(runId)}/captcha/answer`, {
      queueToken, body: { captcha_id: captchaId, answer },
    }),
  recordResult: (runId, body) => request('POST', `/practice/runs/${encodeURIComponent(runId)}/results`, { body }),
  practiceHistory: () => request('GET', '/me/practice'),

  balance: () => request('GET', '/balance'),
  charge: (amount, idempotencyKey) =>
    request('POST', '/balance/charge', { body: { amount }, idempotencyKey }),
  pay: (reservationId, queueToken, idempotencyKey) =>
    request('POST', '/payments', { queueToken, idempotencyKey, body: { reservation_id: reservationId } }),
};
