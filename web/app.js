// app.js — the practice flow, screen by screen:
// login → choose → concert → queue → dates → seats → pay → done (→ practise again).
//
// Each screen has a `go…` function that switches to it (ui.showScreen stops the previous
// screen's timers) and starts whatever that screen polls. User actions run through `run`,
// which clears the last error first and shows any failure in #error; nothing is swallowed.

import { api, session, ApiError, newIdempotencyKey } from './api.js';
import {
  syncClock, serverNow, clockInfo, parseTime, formatCountdown, formatMinutesSeconds,
  formatDateTime, formatWait, formatClock, formatDuration,
} from './clock.js';
import { byId, el, formatWon, showError, clearError, announce, showScreen, scope } from './ui.js';
import { SeatMap, sectionName } from './seatmap.js';
import { newAttempt, saveAttempt, loadHistory, renderTimingTable, renderHistoryTable, stepTimes } from './timing.js';
import { t, applyStatic, setLang, onLangChange, formatNumber } from './i18n.js';

/** The booking-page layouts we can imitate (described by i18n key layout.<code>). */
const LAYOUTS = { interpark: 1, yes24: 1, melon: 1, ticketlink: 1, default: 1 };
/** Sites whose steps have the security letters before the seats. */
const CAPTCHA_SITES = new Set(['interpark', 'yes24', 'melon', 'ticketlink']);
// The crowd figures are for show: every 5 s costs each fan one read of the run (see
// docs/PERFORMANCE.md, "What a practice run costs").
const RUN_POLL_MS = 5000;
const ZONE_SIZE = 500;
const MAX_SEATS = 4;
const QUEUE_POLL_MS = 1000;
const QUEUE_FAR_POLL_MS = 5000;
const SEAT_POLL_MS = 2000;
const CLOCK_RESYNC_MS = 60_000;
const QUEUE_ANNOUNCE_MS = 10_000;
/** 401 codes that are about the queue token, not the login. */
const QUEUE_TOKEN_CODES = new Set(['INVALID_QUEUE_TOKEN', 'QUEUE_TOKEN_EXPIRED']);

/** What this tab knows about the current practice; `resetState` empties it on logout. */
const state = {};
function resetState() {
  Object.assign(state, {
    me: null,
    concert: null, // the concert being practised
    concertsCursor: null, // next page of GET /concerts
    queueToken: null,
    queueStartPosition: null, // for the waiting-room progress bar
    lastQueueAnnounce: 0,
    queuePollMs: 1000, // the waiting room's next look at the line, paced by the wait
    schedules: [], // the dates offered after admission
    schedule: null, // the chosen date
    reservation: null, // the current hold (with seatDetails from the map)
    payKey: null, // Idempotency-Key for paying the current hold (kept for retries)
    chargeKey: null, // Idempotency-Key of a charge not yet answered
    chargeAmount: null,
    attempt: null, // timestamps of this practice attempt
    refunds: new Map(), // reservation_id → refund shown after cancelling
    onWaitlist: false, // joined the chosen date's waiting list
    offer: null, // the waiting list's offer: { reservation, queue_token }
    run: null, // the practice run being played ({run_id, template_code, ...}), null otherwise
    captchaPassed: false, // the run's security letters were typed right
    captcha: null, // the picture being shown: {captcha_id, image_svg}
    zones: null, // the zone overview of a big venue (null: the small one-map flow)
    zone: null, // the zone whose seats are shown
    payMethod: null, // the practice payment method chosen
    result: null, // the practice result recorded
    pendingRun: new URLSearchParams(window.location.search).get('run'), // ?run=<id> to join after login
  });
}
resetState();

const seatMap = new SeatMap(byId('seat-map'), {
  maxSelected: MAX_SEATS,
  onChange: (seats) => renderSelection(seats, true),
  onRefused: (message) => seatMessage(message),
});

// ---- plumbing -----------------------------------------------------------------------------

const inFlight = new Set();

/**
 * Wraps a user action: ignores a second press while the first is running, clears the last
 * error, and reports any failure.
 */
function run(name, fn) {
  return async (event) => {
    event?.preventDefault?.();
    if (inFlight.has(name)) return;
    inFlight.add(name);
    clearError();
    announce(''); // a new action: old news would mislead
    try {
      await fn(event);
    } catch (err) {
      reportError(err);
    } finally {
      inFlight.delete(name);
    }
  };
}

/** Runs fn outside the current screen's timers (e.g. navigating from a poll), reporting failures. */
function detach(fn) {
  Promise.resolve().then(fn).catch((err) => reportError(err));
}

/**
 * Shows an error in #error and reacts to the ones that end something: an expired login
 * returns to the login screen; a dead queue token returns to the concert page.
 */
function reportError(err, prefix = '') {
  if (!(err instanceof ApiError)) {
    console.error(err);
    showError({ message: err?.message ?? String(err), code: 'CLIENT_ERROR' }, prefix);
    return;
  }
  showError(err, prefix);
  if (err.status === 401 && !QUEUE_TOKEN_CODES.has(err.code) && session.token()) {
    logout(t('msg.expired'));
  } else if (QUEUE_TOKEN_CODES.has(err.code) && state.concert) {
    state.queueToken = null;
    openConcert(state.concert);
    announce(t('queue.ended'));
  } else if (err.status === 403 && err.code === 'FORBIDDEN' && state.run && needsCaptcha()
    && document.body.dataset.screen === 'seats') {
    // The letters were not typed (or this tab forgot): they stand before the seats.
    state.captchaPassed = false;
    detach(goCaptcha);
  }
}

/** A refusal of ours (not the server's): shown beside the seats and announced. */
function seatMessage(message) {
  byId('seat-message').textContent = message;
  announce(message);
}

/** body.layout-<code>, falling back to default for unknown codes. */
function setLayout(code) {
  const layout = Object.hasOwn(LAYOUTS, code ?? '') ? code : 'default';
  for (const cls of [...document.body.classList]) {
    if (cls.startsWith('layout-')) document.body.classList.remove(cls);
  }
  document.body.classList.add(`layout-${layout}`);
  return layout;
}

/** Only http(s) addresses are used as links or images. */
function safeUrl(value) {
  if (typeof value !== 'string' || value.trim() === '') return null;
  try {
    const url = new URL(value, window.location.href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/** Re-reads the server clock when the last sync is old; failures are shown, not fatal. */
async function syncClockIfStale(force = false) {
  const { syncedAt } = clockInfo();
  if (!force && syncedAt !== null && Date.now() - syncedAt < CLOCK_RESYNC_MS) return;
  try {
    await syncClock();
  } catch (err) {
    reportError(err, t('msg.clock'));
  }
}

// ---- login / signup / logout ----------------------------------------------------------------

async function login(username, password) {
  const answer = await api.login(username, password);
  session.setToken(answer.access_token);
  byId('login-password').value = '';
  await afterLogin();
}

async function signup() {
  const username = byId('signup-username').value.trim();
  const password = byId('signup-password').value;
  const name = byId('signup-name').value.trim();
  await api.signup(username, password, name);
  announce(t('msg.created'));
  for (const id of ['signup-username', 'signup-password', 'signup-name']) byId(id).value = '';
  await login(username, password);
}

/** Loads the user, restores the last URL they entered, syncs the clock, shows the chooser. */
async function afterLogin() {
  const me = await api.me();
  state.me = me;
  byId('user-name').textContent = t('nav.loggedIn', { name: me.name, username: me.username });
  announce(t('msg.welcome', { name: me.name }));
  if (me.last_entered_url) byId('import-url').value = me.last_entered_url;
  await syncClockIfStale(true);
  if (state.pendingRun) {
    const runId = state.pendingRun;
    state.pendingRun = null;
    await joinRun(runId);
    return;
  }
  goChoose();
}

function logout(message = t('msg.loggedOut')) {
  if (state.me) byId('login-username').value = state.me.username;
  session.clear();
  resetState();
  seatMap.reset();
  byId('user-name').textContent = '';
  byId('import-url').value = '';
  setLayout('default');
  showScreen('login');
  announce(message);
}

// ---- choose a concert -----------------------------------------------------------------------

function goChoose() {
  leaveRun();
  setLayout('default');
  showScreen('choose');
  detach(() => loadConcerts(false));
  detach(loadMyReservations);
}

async function loadConcerts(append) {
  const list = byId('concert-list');
  const page = await api.concerts(append ? state.concertsCursor : null);
  if (!append) list.replaceChildren();
  for (const concert of page.items ?? []) {
    list.append(el('li', {},
      el('button', { type: 'button', class: 'concert-pick', dataset: { concertId: concert.concert_id } },
        el('span', { class: 'pick-title' }, concert.title),
        el('span', { class: 'pick-meta' }, [concert.artist, concert.venue].filter(Boolean).join(' · ')),
        el('span', { class: 'pick-meta' }, t('list.opens', { time: formatDateTime(concert.booking_opens_at) })),
        concert.status ? el('span', { class: `badge status-${concert.status}` }, t(`status.${concert.status}`)) : '')));
  }
  if (!list.children.length) list.append(el('li', { class: 'empty' }, t('list.empty')));
  state.concertsCursor = page.next_cursor ?? null;
  byId('concert-more-button').hidden = !state.concertsCursor;
}

async function importConcert() {
  const url = byId('import-url').value.trim();
  const concert = await api.importConcert(url);
  announce(t('msg.imported', { title: concert.title }));
  openConcert(concert);
}

async function pickConcert(concertId) {
  leaveRun();
  openConcert(await api.concert(concertId));
}

// ---- concert page with countdown --------------------------------------------------------------

/** Shows a concert's page, starts a fresh attempt and the countdown to its open time. */
function openConcert(concert) {
  state.concert = concert;
  state.queueToken = null;
  state.reservation = null;
  state.schedule = null;
  state.captchaPassed = false;
  state.zones = null;
  state.zone = null;
  state.payMethod = null;
  state.result = null;
  seatMap.reset();
  const layout = setLayout(concert.template_code);
  document.body.classList.toggle('is-run', Boolean(state.run));
  document.body.classList.toggle('has-captcha', needsCaptcha());
  numberSteps();

  renderConcertFacts(concert, layout);
  renderHistoryTable(byId('history-table'), loadHistory(concert.concert_id));
  byId('run-form').hidden = Boolean(state.run);
  byId('run-title').hidden = !state.run;
  byId('run-title').textContent = state.run ? t('run.heading') : '';

  const sc = showScreen('concert');
  detach(loadPracticeHistory);
  const opensAt = parseTime(concert.booking_opens_at);
  state.attempt = newAttempt(concert, opensAt, serverNow(), layout);
  detach(() => syncClockIfStale());
  startCountdown(sc, concert, opensAt, parseTime(concert.booking_closes_at));
}

function renderConcertFacts(concert, layout) {
  byId('concert-title').textContent = concert.title ?? t('concert.untitled');
  byId('concert-category').textContent = concert.category ?? '';
  byId('concert-artist').textContent = concert.artist || '—';
  byId('concert-venue').textContent = concert.venue || '—';
  byId('concert-opens').textContent = formatDateTime(concert.booking_opens_at, true);
  byId('concert-closes').textContent = formatDateTime(concert.booking_closes_at);
  byId('concert-status').textContent = concert.status ? t(`status.${concert.status}`) : '—';
  byId('concert-layout').textContent = t(`layout.${layout}`);
  byId('concert-description').textContent = concert.description ?? '';
  renderPoster(concert);
  const source = byId('concert-source');
  const sourceUrl = safeUrl(concert.source_url);
  source.replaceChildren(...(sourceUrl
    ? [t('concert.importedFrom'), el('a', { href: sourceUrl, rel: 'noopener noreferrer', target: '_blank' }, new URL(sourceUrl).host)]
    : []));
}

function renderPoster(concert) {
  const img = byId('concert-poster');
  const fallback = byId('poster-fallback');
  const src = safeUrl(concert.image_url);
  img.hidden = !src;
  fallback.hidden = Boolean(src);
  img.onerror = () => {
    img.hidden = true;
    fallback.hidden = false;
  };
  if (src) {
    img.alt = t('concert.poster', { title: concert.title ?? '' });
    img.src = src;
  } else {
    img.removeAttribute('src');
  }
}

/**
 * Ticks the countdown (tenths of a second) by the server clock. The Book button is enabled
 * in the tick that lands on the open time: the next tick is never scheduled past it.
 */
function startCountdown(sc, concert, opensAt, closesAt) {
  const button = byId('book-button');
  const countdown = byId('countdown');
  const label = byId('countdown-label');
  const clock = byId('server-clock');
  const warned = new Set();

  const tick = () => {
    const now = serverNow();
    let text;
    let caption = ''; // "Opens in" only while counting down
    let open = false;
    if (concert.status === 'CANCELLED') {
      text = t('countdown.cancelled');
    } else if (opensAt === null) {
      open = concert.status === 'BOOKING_OPEN';
      text = open ? t('countdown.open') : t('countdown.unknown');
    } else if (now < opensAt) {
      caption = t('box.opensIn');
      text = formatCountdown(opensAt - now);
      for (const [mark, words] of [[60_000, 'countdown.1min'], [10_000, 'countdown.10s']]) {
        if (opensAt - now <= mark && opensAt - now > mark - 1000 && !warned.has(mark)) {
          warned.add(mark);
          announce(t('countdown.soon', { words: t(words) }));
        }
      }
    } else if (closesAt !== null && now >= closesAt) {
      text = t('countdown.closed');
    } else {
      open = true;
      text = t('countdown.open');
    }
    if (countdown.textContent !== text) countdown.textContent = text;
    if (label.textContent !== caption) label.textContent = caption;
    if (button.disabled === open) {
      button.disabled = !open;
      if (open && !state.attempt.openedBeforePage) announce(t('countdown.nowOpen'));
    }
    const { source, offsetMs } = clockInfo();
    clock.textContent = source === 'server'
      ? t('clock.offset', { time: `${formatClock(now)} KST`, ms: Math.abs(offsetMs), dir: t(offsetMs >= 0 ? 'clock.behind' : 'clock.ahead') })
      : t('clock.noServer', { time: `${formatClock(now)} KST` });

    const untilOpen = opensAt !== null && now < opensAt ? opensAt - now : Infinity;
    sc.after(Math.max(0, Math.min(100, untilOpen)), tick);
  };
  tick();
}

/** Book: enter the waiting queue. */
async function book() {
  const attempt = state.attempt;
  attempt.bookPressedAt ??= serverNow();
  const token = await api.enterQueue(state.concert.concert_id);
  attempt.tokenAt = serverNow();
  state.queueToken = token.queue_token;
  state.queueStartPosition = token.position ?? 0;
  if (token.status === 'ACTIVE') {
    await admitted();
  } else {
    goQueue(token);
  }
}

// ---- waiting room ----------------------------------------------------------------------------

function goQueue(first) {
  const sc = showScreen('queue');
  byId('queue-concert').textContent = state.concert.title ?? '';
  byId('queue-number').textContent = '—';
  byId('queue-wait').textContent = '—';
  state.lastQueueAnnounce = 0;
  renderQueue(first);
  state.queuePollMs = QUEUE_POLL_MS;
  sc.poll(() => state.queuePollMs, () => pollQueue(sc), reportError);
}

/**
 * The place a queue token names, from its own payload (the shard `shd` and the number `num`),
 * or null for a place the page cannot follow by itself: a pre-queue place (number 0, ranked in
 * secret) or a practice run's line (its crowd is simulated by the service).
 */
function tokenPlace(queueToken) {
  if (state.run) return null;
  try {
    const payload = queueToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(payload));
    const number = Number(claims.num ?? 0);
    return number > 0 ? { shard: Number(claims.shd ?? 0), number } : null;
  } catch {
    return null;
  }
}

/**
 * Where `place` stands by the published progress (GET /queue/progress/{id}), as
 * GET /queue/tokens/current would say (shared/src/queue.rs, QueueProgress::standing):
 * `{ reached: true }` once admission has come to the place, null if the document does not
 * cover it.
 */
function standingFrom(progress, place, nowMs) {
  const shard = progress.shards?.[place.shard];
  if (!shard) return null;
  if (place.number <= shard.admitted_up_to) return { reached: true };
  const shards = Math.max(1, progress.entry_shards);
  const position = (Math.max(0, place.number - shard.admitted_up_to - 1) + shard.pre_remaining) * shards;
  let perSecond = null;
  if (shard.first_admitted_at && shard.admitted > 0) {
    const elapsed = (nowMs - Date.parse(shard.first_admitted_at)) / 1000;
    if (elapsed >= 5) perSecond = (shard.admitted * shards) / elapsed;
  }
  perSecond ??= Math.max(1, progress.max_active) / Math.max(1, progress.active_ttl_seconds);
  return { reached: false, position, estimated_wait_seconds: Math.ceil((position + 1) / perSecond) };
}

/**
 * One look at the line. While the page can place itself from the public progress document
 * (cached a second at the edge), it does, and asks the API nothing; once admission reaches its
 * place, or without a document, it asks GET /queue/tokens/current.
 */
async function pollQueue(sc) {
  const place = tokenPlace(state.queueToken);
  if (place) {
    const progress = await api.queueProgress(state.concert.concert_id).catch(() => null);
    if (!sc.active) return;
    const standing = progress && standingFrom(progress, place, serverNow());
    if (standing && !standing.reached) {
      // Every second near the head, every 5 s with more than 50 s to wait: a million waiting
      // fans ask the edge at most about 200,000 times a second (CloudFront takes 250,000 a
      // distribution by default).
      state.queuePollMs = Math.min(QUEUE_FAR_POLL_MS, Math.max(QUEUE_POLL_MS, standing.estimated_wait_seconds * 100));
      showQueueStanding(standing);
      return;
    }
    state.queuePollMs = QUEUE_POLL_MS;
  }
  const status = await api.queueStatus(state.queueToken);
  if (!sc.active) return;
  if (status.status === 'ACTIVE') {
    detach(admitted);
    return;
  }
  if (status.status === 'EXPIRED') {
    showError({ message: t('queue.expired') });
    detach(() => openConcert(state.concert));
    return;
  }
  showQueueStanding(status);
}

function showQueueStanding(status) {
  renderQueue(status);
  if (Date.now() - state.lastQueueAnnounce >= QUEUE_ANNOUNCE_MS) {
    state.lastQueueAnnounce = Date.now();
    announce(t('queue.announce', { n: formatNumber(status.position), wait: formatWait(status.estimated_wait_seconds) }));
  }
}

function renderQueue(status) {
  const position = Number(status.position ?? 0);
  const ahead = byId('queue-position');
  ahead.textContent = t('queue.people', { n: formatNumber(position) });
  ahead.dataset.position = String(position);
  // The waiting number: one's own place, counting oneself.
  byId('queue-number').textContent = formatNumber(position + 1);
  if (status.estimated_wait_seconds !== undefined) {
    byId('queue-wait').textContent = formatWait(status.estimated_wait_seconds);
  }
  if (state.queueStartPosition === null || position > state.queueStartPosition) state.queueStartPosition = position;
  const start = state.queueStartPosition;
  const done = start > 0 ? Math.round(((start - position) / start) * 100) : 100;
  const progress = byId('queue-progress');
  progress.value = done;
  progress.textContent = `${done}%`;
}

async function leaveQueue() {
  if (state.queueToken) await api.leaveQueue(state.queueToken);
  state.queueToken = null;
  announce(t('queue.left'));
  openConcert(state.concert);
}

/** The queue said ACTIVE: note the time and go to the dates. */
async function admitted() {
  state.attempt.admittedAt ??= serverNow();
  announce(t('queue.in'));
  await goDates();
}

// ---- dates -------------------------------------------------------------------------------------

async function goDates() {
  const sc = showScreen('dates');
  seatMap.reset();
  const list = byId('schedule-list');
  list.replaceChildren(el('li', { class: 'empty' }, t('dates.loading')));
  const data = await api.schedules(state.concert.concert_id, state.queueToken);
  if (!sc.active) return;
  list.replaceChildren();
  for (const schedule of data.items ?? []) {
    list.append(el('li', {},
      el('button', { type: 'button', class: 'schedule-pick', dataset: { scheduleId: schedule.schedule_id } },
        el('span', { class: 'pick-title' }, formatDateTime(schedule.starts_at)),
        el('span', { class: 'pick-meta' }, t('dates.left', {
          left: schedule.available_seats === undefined ? '?' : formatNumber(schedule.available_seats),
          total: schedule.total_seats === undefined ? '?' : formatNumber(schedule.total_seats),
        })))));
  }
  if (!list.children.length) list.append(el('li', { class: 'empty' }, t('dates.none')));
  state.schedules = data.items ?? [];
}

function pickSchedule(scheduleId) {
  if (state.schedule?.schedule_id !== scheduleId) state.onWaitlist = false;
  state.schedule = (state.schedules ?? []).find((s) => s.schedule_id === scheduleId) ?? { schedule_id: scheduleId };
  state.attempt.dateAt ??= serverNow();
  seatMap.reset();
  state.zone = null;
  // A big venue opens on its zone overview; the small 50-seat map shows all at once.
  state.zones = Number(state.schedule.total_seats ?? 0) > ZONE_SIZE ? [] : null;
  if (needsCaptcha() && !state.captchaPassed) goCaptcha();
  else goSeats();
}

// ---- seat map and hold ------------------------------------------------------------------------------

function goSeats() {
  const sc = showScreen('seats');
  if (!state.onWaitlist) {
    byId('waitlist-join-button').hidden = false;
    byId('waitlist-pay-button').hidden = true;
  }
  byId('seats-date').textContent = state.schedule.starts_at ? t('seats.date', { date: formatDateTime(state.schedule.starts_at) }) : '';
  byId('seat-message').textContent = '';
  const timer = byId('hold-timer');
  timer.textContent = t('timer.notHeld');
  timer.classList.remove('warning');
  renderSelection(seatMap.selectedSeats(), true);
  const zoned = state.zones !== null;
  const overview = zoned && state.zone === null;
  byId('zone-overview').hidden = !overview;
  byId('seat-area').hidden = overview;
  byId('back-to-zones-button').hidden = !zoned || overview;
  byId('seat-map').classList.toggle('zone-map', zoned);
  byId('seats-heading').textContent = t(overview ? 'seats.zonesHeading' : 'seats.heading');
  const zoneTitle = byId('zone-title');
  zoneTitle.hidden = !zoned || overview;
  if (zoned && !overview) zoneTitle.textContent = t('seats.zoneSeats', { zone: zoneName(state.zone) });
  if (overview) {
    sc.poll(SEAT_POLL_MS, () => refreshZones(sc), reportError);
    return;
  }
  if (!seatMap.buttons.size) byId('seat-map').replaceChildren(el('p', { class: 'empty' }, t('seats.loading')));
  sc.poll(SEAT_POLL_MS, () => refreshSeats(sc), reportError);
}

/** The name of zone N from the overview (or its number). */
function zoneName(zone) {
  const item = (state.zones ?? []).find((z) => z.zone === zone);
  return item?.name ?? String(zone);
}

/** One refresh of the seats: the whole small map, or the chosen zone's 500 seats. */
async function refreshSeats(sc) {
  if (document.hidden && seatMap.buttons.size) return; // nobody is looking: skip this round
  const data = await api.seats(state.schedule.schedule_id, state.queueToken, state.zones !== null ? state.zone : undefined);
  if (!sc.active) return;
  const items = data.items ?? [];
  const lost = seatMap.update(items);
  const taken = items.filter((seat) => seat.status !== 'AVAILABLE').length;
  // What the map shows, for anyone comparing (the browser test, a curious fan in devtools).
  const map = byId('seat-map');
  map.dataset.taken = String(taken);
  map.dataset.takenSeats = items.filter((seat) => seat.status !== 'AVAILABLE').map((seat) => seat.seat_no).join(',');
  map.dataset.zone = state.zone === null ? '' : String(state.zone);
  map.dataset.refreshedAt = String(Date.now());
  renderLegend(seatMap.grades);
  renderLimit(data.ticket_limit);
  if (lost.length) seatMessage(t('seat.lost', { nos: lost.join(', ') }));
  const soldOut = state.zones === null && items.length > 0 && items.every((seat) => seat.status !== 'AVAILABLE');
  byId('waitlist-box').hidden = !(soldOut || state.onWaitlist);
  if (state.onWaitlist) await refreshWaitlist();
}

/** The zone overview of a big venue: name, grade, price and seats left of each zone. */
async function refreshZones(sc) {
  if (document.hidden && state.zones?.length) return;
  const data = await api.zones(state.schedule.schedule_id, state.queueToken);
  if (!sc.active) return;
  state.zones = data.items ?? [];
  renderZones();
}

let zoneButtons = new Map();
function renderZones() {
  const grid = byId('zone-grid');
  const key = (state.zones ?? []).map((z) => z.zone).join(',');
  if (grid.dataset.key !== key) {
    grid.dataset.key = key;
    zoneButtons = new Map();
    const colours = new Map();
    for (const z of [...state.zones].sort((a, b) => b.price - a.price)) {
      if (!colours.has(z.grade)) colours.set(z.grade, `grade-${colours.size % 8}`);
    }
    grid.replaceChildren(...state.zones.map((z) => {
      const button = el('button', { type: 'button', class: `zone-pick ${colours.get(z.grade)}`, dataset: { zone: z.zone } },
        el('span', { class: 'zone-name' }, z.name),
        el('span', { class: 'zone-grade' }, t('result.gradeValue', { grade: z.grade })),
        el('span', { class: 'zone-price' }, formatWon(z.price)),
        el('span', { class: 'zone-left' }));
      zoneButtons.set(z.zone, button);
      return el('li', {}, button);
    }));
  }
  for (const z of state.zones) {
    const button = zoneButtons.get(z.zone);
    const left = Number(z.available_seats ?? 0);
    const leftText = left > 0 ? t('zone.left', { n: formatNumber(left) }) : t('zone.soldOut');
    button.querySelector('.zone-left').textContent = leftText;
    button.dataset.available = String(left);
    // A sold-out zone is greyed but may still be opened, to watch for seats coming back (취켓팅).
    button.classList.toggle('sold-out', left === 0);
    button.setAttribute('aria-label', t('zone.label', { name: z.name, grade: z.grade, price: formatWon(z.price), left: leftText }));
  }
}

function pickZone(zone) {
  state.zone = zone;
  seatMap.reset();
  goSeats();
}

function backToZones() {
  state.zone = null;
  seatMap.reset();
  goSeats();
}

/** The ticket limit: how many more seats of this date the fan may take. */
function renderLimit(limit) {
  if (!limit) return;
  const remaining = Number(limit.remaining ?? 0);
  seatMap.maxSelected = Math.max(0, Math.min(MAX_SEATS, remaining));
  byId('ticket-limit').textContent = remaining > 0
    ? t('limit.remaining', { n: remaining, limit: limit.limit })
    : t('limit.reached', { limit: limit.limit });
}

// ---- waiting list ---------------------------------------------------------------------------------

async function joinWaitlist() {
  const count = Number(byId('waitlist-count').value);
  const entry = await api.joinWaitlist(state.schedule.schedule_id, count, state.queueToken);
  state.onWaitlist = true;
  renderWaitlist(entry);
  announce(t('waitlist.joined'));
}

async function refreshWaitlist() {
  renderWaitlist(await api.waitlist(state.schedule.schedule_id));
}

/** The entry's state, and the offer's pay button while seats are held for the fan. */
function renderWaitlist(entry) {
  const status = byId('waitlist-status');
  const payButton = byId('waitlist-pay-button');
  byId('waitlist-join-button').hidden = true;
  payButton.hidden = true;
  state.offer = null;
  switch (entry.status) {
    case 'WAITING':
      status.textContent = t('waitlist.waiting', { count: entry.count, ahead: entry.ahead ?? 0 });
      break;
    case 'OFFERED':
      if (entry.offer) {
        state.offer = entry.offer;
        const seats = (entry.offer.reservation.seats ?? []).map((s) => s.seat_no).join(', ');
        status.textContent = t('waitlist.offered', { seats, time: formatDateTime(entry.offer.expires_at) });
        payButton.hidden = false;
      }
      break;
    case 'PASSED':
      status.textContent = t('waitlist.passed');
      state.onWaitlist = false;
      break;
    default:
      state.onWaitlist = false;
      status.textContent = t('waitlist.status', { status: entry.status });
  }
}

/** Takes the offer: its hold and queue token become the fan's, to pay as any hold. */
function takeOffer() {
  const offer = state.offer;
  if (!offer) return;
  state.queueToken = offer.queue_token;
  state.reservation = { ...offer.reservation, seatDetails: offer.reservation.seats };
  state.payKey = newIdempotencyKey();
  state.onWaitlist = false;
  state.attempt.holdAt = serverNow();
  announce(t('waitlist.taken'));
  goPay();
}

let legendKey = '';
function renderLegend(grades) {
  const key = JSON.stringify(grades);
  if (key === legendKey) return;
  legendKey = key;
  byId('grade-legend').replaceChildren(...grades.map((g) =>
    el('li', {}, el('span', { class: `swatch ${g.colour}`, 'aria-hidden': 'true' }),
      el('span', { class: 'legend-grade' }, g.grade), ` ${formatWon(g.price)}`)));
}

/** The sidebar list of chosen (or held) seats and their total. */
function renderSelection(seats, removable) {
  const list = byId('selected-seats');
  list.replaceChildren(...seats.map((seat) => el('li', {},
    el('span', {}, t('selection.seat', { no: seat.seat_no }),
      seat.section !== undefined ? el('span', { class: 'seat-detail' },
        t('selection.detail', { section: sectionName(seat.section), row: seat.row, grade: seat.grade })) : '',
      el('span', { class: 'seat-price' }, ` · ${formatWon(seat.price)}`)),
    removable ? el('button', {
      type: 'button', class: 'link-button remove-seat', 'aria-label': t('selection.removeSeat', { no: seat.seat_no }),
      onclick: () => seatMap.deselect(seat.seat_no),
    }, t('selection.remove')) : '')));
  if (!seats.length) list.append(el('li', { class: 'empty' }, t('selection.none')));
  byId('selected-total').textContent = formatWon(seats.reduce((sum, s) => sum + Number(s.price ?? 0), 0));
  byId('hold-button').disabled = seats.length === 0;
  if (removable && seats.length) byId('seat-message').textContent = t('selection.count', { n: seats.length, max: MAX_SEATS });
}

async function hold() {
  const seats = seatMap.selectedSeats();
  if (!seats.length) {
    seatMessage(t('seat.chooseFirst'));
    return;
  }
  const seatNos = seats.map((s) => s.seat_no);
  let reservation;
  try {
    reservation = await api.hold(state.schedule.schedule_id, seatNos, state.queueToken);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'TICKET_LIMIT_REACHED') {
      const d = err.details ?? {};
      seatMessage(t('seat.limit', { limit: d.limit, taken: d.taken }));
      await refreshSeats(scope());
      return;
    }
    if (err instanceof ApiError && err.code === 'RATE_LIMITED' && err.details?.reason === 'hold_cooldown') {
      seatMessage(t('seat.cooldown', { s: err.details.retry_after_seconds }));
      return;
    }
    if (!(err instanceof ApiError) || err.code !== 'SEAT_UNAVAILABLE') throw err;
    const taken = Array.isArray(err.details?.seat_nos) ? err.details.seat_nos : seatNos;
    reportError(err, t('seat.someoneGot', { nos: taken.join(', ') }));
    for (const no of taken) seatMap.deselect(no);
    seatMessage(t('seat.wentElsewhere', { nos: taken.join(', ') }));
    await refreshSeats(scope());
    return;
  }
  state.attempt.holdAt = serverNow();
  state.attempt.seats = seatNos;
  const bySeat = new Map(seats.map((s) => [s.seat_no, s]));
  state.reservation = {
    ...reservation,
    seatDetails: (reservation.seats ?? []).map((s) => ({ ...bySeat.get(s.seat_no), ...s })),
  };
  state.payKey = newIdempotencyKey();
  seatMap.clearSelection();
  announce(t('seat.held', { nos: seatNos.join(', ') }));
  if (state.run) goPrice();
  else goPay();
}

// ---- payment ------------------------------------------------------------------------------------

function goPay() {
  const sc = showScreen('pay');
  const r = state.reservation;
  byId('pay-amount').textContent = formatWon(r.amount);
  byId('seat-message').textContent = '';
  byId('release-button').textContent = t('pay.release');
  byId('pay-method-fact').hidden = !state.payMethod;
  byId('pay-method').textContent = state.payMethod ? t(`method.${state.payMethod}`) : '';
  byId('pay-short').textContent = '';
  byId('pay-button').disabled = false;
  renderSelection(r.seatDetails, false);
  detach(loadBalance);
  startHoldTimer(sc, parseTime(r.expires_at));
}

/** Counts down to the hold's expires_at by the server clock. */
function startHoldTimer(sc, expiresAt) {
  const timer = byId('hold-timer');
  const warned = new Set();
  const tick = () => {
    if (!state.reservation) return;
    const left = expiresAt - serverNow();
    timer.textContent = left > 0 ? t('timer.left', { time: formatMinutesSeconds(left) }) : t('timer.expired');
    timer.classList.toggle('warning', left <= 60_000);
    for (const [mark, words] of [[60_000, 'countdown.1min'], [10_000, 'countdown.10s']]) {
      if (left <= mark && left > 0 && !warned.has(mark)) {
        warned.add(mark);
        if (left > mark - 1000) announce(t('timer.warn', { words: t(words) }));
      }
    }
    if (left > 0) sc.after(Math.min(250, left), tick);
    else announce(t('timer.gone'));
  };
  if (expiresAt === null) timer.textContent = t('timer.noExpiry');
  else tick();
}

async function loadBalance() {
  const { balance } = await api.balance();
  renderBalance(balance);
}

/** The balance, and (when it is short of the hold's amount) how much to charge. */
function renderBalance(balance) {
  const node = byId('balance');
  node.textContent = formatWon(balance);
  node.dataset.balance = String(balance);
  const amount = Number(state.reservation?.amount ?? 0);
  const short = amount - Number(balance);
  const note = byId('pay-short');
  if (short > 0 && document.body.dataset.screen === 'pay') {
    note.textContent = t('pay.short', { short: formatWon(short) });
    const input = byId('charge-amount');
    // Suggest enough to pay, unless the fan typed more already.
    if (!(Number(input.value) >= short)) input.value = String(Math.min(1_000_000, Math.ceil(short / 10_000) * 10_000));
  } else {
    note.textContent = '';
  }
}

async function charge() {
  const raw = byId('charge-amount').value.trim();
  // Whole numbers go as numbers; anything else is sent as typed for the server to judge.
  const amount = /^\d+$/.test(raw) ? Number(raw) : raw;
  if (state.chargeKey === null || state.chargeAmount !== raw) {
    state.chargeKey = newIdempotencyKey();
    state.chargeAmount = raw;
  }
  const answer = await api.charge(amount, state.chargeKey);
  state.chargeKey = null;
  renderBalance(answer.balance);
  announce(t('pay.charged', { amount: formatWon(amount), balance: formatWon(answer.balance) }));
}

/** Errors after which the hold is gone and the seats must be chosen again. */
const HOLD_GONE = {
  INSUFFICIENT_BALANCE: (d) => t('pay.insufficient', {
    detail: d?.balance !== undefined ? t('pay.insufficientDetail', { balance: formatWon(d.balance), amount: formatWon(d.amount) }) : '',
  }),
  RESERVATION_EXPIRED: () => t('pay.expired'),
  RESERVATION_NOT_PAYABLE: () => t('pay.notPayable'),
};

async function pay() {
  const r = state.reservation;
  if (!r) {
    showError({ message: t('pay.none') });
    return;
  }
  let payment;
  try {
    payment = await api.pay(r.reservation_id, state.queueToken, state.payKey);
  } catch (err) {
    if (!(err instanceof ApiError) || !HOLD_GONE[err.code]) throw err;
    reportError(err, HOLD_GONE[err.code](err.details));
    announce(t('pay.ended'));
    state.reservation = null;
    byId('hold-timer').textContent = t('timer.released');
    byId('release-button').textContent = t('pay.chooseAgain');
    byId('pay-button').disabled = true;
    detach(loadBalance);
    return;
  }
  state.attempt.paidAt = serverNow();
  let confirmed = { ...r, status: 'CONFIRMED' };
  try {
    confirmed = await api.reservation(r.reservation_id);
  } catch (err) {
    reportError(err, t('pay.reread'));
  }
  goDone({ ...confirmed, seatDetails: r.seatDetails }, payment);
}

async function release() {
  const r = state.reservation;
  if (r) {
    await api.release(r.reservation_id);
    state.reservation = null;
    announce(t('pay.released'));
  }
  goSeats();
}

// ---- done, timings, practise again ---------------------------------------------------------------------

function goDone(reservation, payment) {
  showScreen('done');
  byId('done-heading').textContent = t(state.run ? 'done.headingRun' : 'done.heading');
  const history = saveAttempt(state.attempt);
  renderTimingTable(byId('timing-table'), state.attempt);
  renderHistoryTable(byId('history-table'), history);
  state.done = { reservation, payment };
  renderReservationResult();
  announce(t('done.announce', { status: t(`status.${reservation.status}`) }));
  state.queueToken = null; // a payment uses the queue token up
  state.reservation = null;
  detach(loadMyReservations);
  if (state.run) detach(() => recordResult(reservation.reservation_id));
}

function renderReservationResult() {
  const box = byId('reservation-result');
  if (!state.done) {
    box.replaceChildren();
    return;
  }
  const { reservation, payment } = state.done;
  const seats = reservation.seatDetails ?? reservation.seats ?? [];
  box.replaceChildren(
    el('p', { class: 'result-status' }, t('done.status'),
      el('strong', { class: `badge status-${reservation.status}`, dataset: { status: reservation.status } }, t(`status.${reservation.status}`))),
    el('dl', { class: 'facts' },
      el('div', {}, el('dt', {}, t('done.reservation')), el('dd', {}, el('code', { class: 'reservation-id' }, reservation.reservation_id))),
      el('div', {}, el('dt', {}, t('done.concert')), el('dd', {}, reservation.concert_title ?? state.concert.title)),
      el('div', {}, el('dt', {}, t('done.date')), el('dd', {}, formatDateTime(reservation.starts_at ?? state.schedule?.starts_at))),
      el('div', {}, el('dt', {}, t('done.seats')), el('dd', {}, seats.map((s) => s.seat_no).join(', '))),
      el('div', {}, el('dt', {}, t('done.paid')), el('dd', {}, formatWon(payment.amount))),
      el('div', {}, el('dt', {}, t('done.balanceAfter')), el('dd', {}, formatWon(payment.balance_after)))),
  );
}

async function practiseAgain() {
  if (state.run) {
    // Practising again: back to the concert the run came from, to start a new run.
    const source = state.run.practice?.source_concert_id ?? state.runSource;
    leaveRun();
    if (source) openConcert(await api.concert(source));
    else goChoose();
    return;
  }
  let concert = state.concert;
  try {
    concert = await api.concert(concert.concert_id);
  } catch (err) {
    reportError(err, t('msg.refreshConcert'));
  }
  openConcert(concert);
}

// ---- my reservations ----------------------------------------------------------------------------------------

async function loadMyReservations() {
  const data = await api.myReservations();
  const list = byId('my-reservations');
  list.replaceChildren(...(data.items ?? []).map(renderReservation));
  if (!list.children.length) list.append(el('li', { class: 'empty' }, t('reservations.none')));
}

function renderReservation(r) {
  const refund = r.refund ?? state.refunds.get(r.reservation_id);
  const seats = (r.seats ?? []).map((s) => s.seat_no).join(', ');
  return el('li', { class: 'my-reservation', dataset: { status: r.status, reservationId: r.reservation_id } },
    el('div', { class: 'res-main' },
      el('strong', {}, r.concert_title ?? t('reservations.concert')),
      el('span', { class: 'pick-meta' }, t('reservations.meta', { date: formatDateTime(r.starts_at), seats, amount: formatWon(r.amount ?? 0) })),
      refund !== undefined && refund !== null ? el('span', { class: 'refund' }, t('reservations.refunded', { amount: formatWon(refund) })) : ''),
    el('span', { class: `badge status-${r.status}` }, t(`status.${r.status}`)),
    r.status === 'CONFIRMED'
      ? el('button', {
        type: 'button', class: 'secondary cancel-button', dataset: { reservationId: r.reservation_id },
        'aria-label': t('reservations.cancelLabel', { seats, title: r.concert_title ?? '' }),
      }, t('reservations.cancel'))
      : '');
}

/**
 * The first press shows what cancelling would refund now (the concert's fee schedule); the
 * second cancels.
 */
async function cancelReservation(button) {
  const id = button.dataset.reservationId;
  if (button.dataset.confirm !== 'yes') {
    const terms = await api.cancellationTerms(id);
    if (!terms.cancellable) {
      announce(t('reservations.cannotReason', { reason: terms.reason }));
      button.textContent = t('reservations.cannot');
      button.disabled = true;
      return;
    }
    button.dataset.confirm = 'yes';
    button.textContent = terms.fee > 0
      ? t('reservations.confirmFee', { refund: formatWon(terms.refund), fee: formatWon(terms.fee) })
      : t('reservations.confirmFull', { refund: formatWon(terms.refund) });
    announce(button.textContent);
    return;
  }
  const answer = await api.cancel(id);
  state.refunds.set(id, answer.refund);
  announce(t('reservations.cancelled', { amount: formatWon(answer.refund ?? 0) }));
  await loadMyReservations();
}


// ---- practice runs: a crowd of rivals ------------------------------------------------------------

/** Whether the current run's site puts the security letters before the seats. */
function needsCaptcha() {
  if (!state.run) return false;
  return state.run.practice?.captcha ?? CAPTCHA_SITES.has(state.run.template_code);
}

/** Numbers the booking steps shown (the run-only and letters-only ones hide on other concerts). */
function numberSteps() {
  let n = 0;
  for (const li of document.querySelectorAll('#step-list li')) {
    const shown = !(li.hasAttribute('data-run-only') && !state.run)
      && !(li.hasAttribute('data-captcha-only') && !needsCaptcha());
    li.hidden = !shown;
    if (shown) li.querySelector('.step-no').textContent = String(n += 1);
  }
}

/** POST /practice/runs from the concert page's form, then shows the run's countdown. */
async function createRun() {
  const countdown = byId('run-countdown').value.trim();
  const body = {
    concert_id: state.concert.concert_id,
    difficulty: byId('run-difficulty').value,
    venue: byId('run-venue').value,
    site: byId('run-site').value,
    start: 'now',
    countdown_seconds: /^\d+$/.test(countdown) ? Number(countdown) : countdown,
  };
  const run = await api.createRun(body);
  state.runSource = state.concert.concert_id;
  enterRun(run);
  announce(t('run.created', { time: formatDateTime(run.booking_opens_at, true) }));
}

/** ?run=<id>: GET /practice/runs/{id} and show it. */
async function joinRun(runId) {
  const run = await api.run(runId);
  enterRun(run);
  announce(t('run.joined'));
}

/** Makes a run the concert being practised: its page, share link and crowd figures. */
function enterRun(run) {
  leaveRun();
  state.run = run;
  const url = new URL(window.location.href);
  url.search = '';
  url.hash = '';
  url.searchParams.set('run', run.run_id);
  history.replaceState(null, '', url.href);
  byId('run-link').value = url.href;
  byId('run-box').dataset.runId = run.run_id;
  renderRunSettings();
  renderCrowd(run.crowd);
  startRunPolling();
  openConcert(run);
}

function renderRunSettings() {
  const run = state.run;
  if (!run) return;
  const setup = run.practice ?? {};
  byId('run-settings').textContent = t('run.settings', {
    rivals: formatNumber(setup.difficulty?.rivals ?? 0),
    venue: setup.venue ? t(`run.venue.${setup.venue}`) : formatNumber(run.schedules?.[0]?.total_seats ?? 0),
    site: t(`run.site.${run.template_code ?? 'default'}`),
  });
}

let runTimer = null;
/** Polls GET /practice/runs/{id} for the crowd figures while the run is on (any screen). */
function startRunPolling() {
  stopRunPolling();
  const runId = state.run.run_id;
  const tick = async () => {
    if (!state.run || state.run.run_id !== runId) return;
    try {
      if (!document.hidden) {
        const run = await api.run(runId);
        if (state.run?.run_id === runId) renderCrowd(run.crowd);
      }
    } catch (err) {
      console.warn('crowd figures', err);
    }
    if (state.run?.run_id === runId) runTimer = setTimeout(tick, RUN_POLL_MS);
  };
  runTimer = setTimeout(tick, 0);
}

function stopRunPolling() {
  if (runTimer !== null) clearTimeout(runTimer);
  runTimer = null;
}

function renderCrowd(crowd) {
  state.crowd = crowd ?? state.crowd;
  const c = state.crowd;
  if (!c) return;
  byId('crowd-in-line').textContent = t('run.people', { n: formatNumber(c.in_line) });
  byId('crowd-admitted').textContent = t('run.people', { n: formatNumber(c.admitted) });
  byId('crowd-seats').textContent = t('run.seatsOf', { gone: formatNumber(c.seats_gone), total: formatNumber(c.total_seats) });
  byId('crowd-seats').dataset.gone = String(c.seats_gone);
}

/** Ends the run mode: no more crowd polling, the address without ?run. */
function leaveRun() {
  stopRunPolling();
  if (!state.run) return;
  state.run = null;
  state.crowd = null;
  document.body.classList.remove('is-run', 'has-captcha');
  const url = new URL(window.location.href);
  if (url.searchParams.has('run')) {
    url.searchParams.delete('run');
    history.replaceState(null, '', url.href);
  }
}

async function copyRunLink() {
  const input = byId('run-link');
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
  }
  announce(t('run.copied'));
}

// ---- security letters (보안문자) ----------------------------------------------------------------

function goCaptcha() {
  showScreen('captcha');
  byId('captcha-message').textContent = '';
  byId('captcha-answer').value = '';
  detach(newCaptcha);
}

async function newCaptcha() {
  byId('captcha-loading').hidden = false;
  const picture = await api.captcha(state.concert.concert_id, state.queueToken);
  showCaptcha(picture);
}

/** Shows the server's SVG as an image (never as markup in this page). */
function showCaptcha(picture) {
  if (!picture?.captcha_id || typeof picture.image_svg !== 'string') return;
  state.captcha = picture;
  const img = byId('captcha-image');
  img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(picture.image_svg)}`;
  img.dataset.captchaId = picture.captcha_id;
  img.hidden = false;
  byId('captcha-loading').hidden = true;
  const input = byId('captcha-answer');
  input.value = '';
  input.focus();
}

async function answerCaptcha() {
  const typed = byId('captcha-answer').value.trim();
  const message = byId('captcha-message');
  if (!typed) {
    message.textContent = t('captcha.empty');
    return;
  }
  if (!state.captcha) return;
  try {
    await api.answerCaptcha(state.concert.concert_id, state.captcha.captcha_id, typed, state.queueToken);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'VALIDATION_FAILED' && err.details?.captcha) {
      message.textContent = t('captcha.wrong');
      message.dataset.refused = String(Number(message.dataset.refused ?? 0) + 1);
      showCaptcha(err.details.captcha);
      return;
    }
    throw err;
  }
  state.captchaPassed = true;
  state.attempt.captchaAt ??= serverNow();
  announce(t('captcha.passed'));
  goSeats();
}

// ---- the site's steps after the seats: price, booker, method ------------------------------------

function stepScreen(name) {
  const sc = showScreen(name);
  const r = state.reservation;
  if (r) {
    renderSelection(r.seatDetails, false);
    startHoldTimer(sc, parseTime(r.expires_at));
  }
  return sc;
}

function goPrice() {
  stepScreen('price');
  const r = state.reservation;
  byId('price-count').textContent = t('price.countValue', { n: (r?.seatDetails ?? []).length });
  byId('price-amount').textContent = formatWon(r?.amount ?? 0);
}

function priceDone() {
  state.attempt.priceAt ??= serverNow();
  goBooker();
}

function goBooker() {
  stepScreen('booker');
  byId('booker-message').textContent = '';
  const name = byId('booker-name');
  if (!name.value && state.me?.name) name.value = state.me.name;
}

function bookerDone() {
  const message = byId('booker-message');
  const name = byId('booker-name');
  const phone = byId('booker-phone');
  const terms = byId('booker-terms');
  for (const input of [name, phone, terms]) input.removeAttribute('aria-invalid');
  let problem = null;
  if (!name.value.trim()) problem = [name, 'booker.needName'];
  else if (!/^0\d{1,2}-?\d{3,4}-?\d{4}$/.test(phone.value.trim())) problem = [phone, 'booker.needPhone'];
  else if (!terms.checked) problem = [terms, 'booker.needTerms'];
  if (problem) {
    problem[0].setAttribute('aria-invalid', 'true');
    message.textContent = t(problem[1]);
    problem[0].focus();
    return;
  }
  message.textContent = '';
  state.attempt.bookerAt ??= serverNow();
  goMethod();
}

function goMethod() {
  stepScreen('method');
  byId('method-message').textContent = '';
}

function methodDone() {
  const chosen = document.querySelector('#method-form input[name="method"]:checked');
  if (!chosen) {
    byId('method-message').textContent = t('method.need');
    return;
  }
  state.payMethod = chosen.value;
  state.attempt.methodAt ??= serverNow();
  goPay();
}

// ---- results against the crowd -------------------------------------------------------------------

/** POST .../results with this attempt's step times, then shows where the fan stood. */
async function recordResult(reservationId) {
  const run = state.run;
  if (!run) return;
  const box = byId('run-result');
  box.hidden = false;
  byId('run-result-body').replaceChildren(el('p', { class: 'hint' }, t('result.saving')));
  const body = { steps: stepTimes(state.attempt).slice(0, 20) };
  if (reservationId) body.reservation_id = reservationId;
  const result = await api.recordResult(run.run_id, body);
  state.result = result;
  renderResult();
  await loadPracticeHistory();
}

const percent = (p) => (p === null || p === undefined ? '—' : (Math.round(Number(p) * 10) / 10).toLocaleString('en-US'));

function renderResult() {
  const result = state.result;
  const box = byId('run-result');
  if (!result) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  box.dataset.fasterThan = String(result.faster_than_percent ?? '');
  box.dataset.seatsGone = String(result.seats_gone_percent ?? '');
  const seats = result.seats ?? [];
  byId('run-result-body').replaceChildren(
    el('ul', { class: 'result-lines' },
      el('li', { class: 'result-faster' }, result.faster_than_percent === null || result.faster_than_percent === undefined
        ? t('result.none') : t('result.faster', { p: percent(result.faster_than_percent) })),
      result.ahead_at_entry !== null && result.ahead_at_entry !== undefined
        ? el('li', {}, t('result.ahead', { n: formatNumber(result.ahead_at_entry) })) : '',
      el('li', { class: 'result-gone' }, result.seats_gone_percent === null || result.seats_gone_percent === undefined
        ? t('result.noPick') : t('result.gone', { p: percent(result.seats_gone_percent) }))),
    el('dl', { class: 'facts' },
      el('div', {}, el('dt', {}, t('result.seats')), el('dd', { class: 'result-seats' }, seats.length ? seats.join(', ') : '—')),
      el('div', {}, el('dt', {}, t('result.grade')), el('dd', {}, result.grade ? t('result.gradeValue', { grade: result.grade }) : '—')),
      el('div', {}, el('dt', {}, t('result.entered')), el('dd', {}, formatDuration(result.entered_ms))),
      el('div', {}, el('dt', {}, t('result.total')), el('dd', {}, formatDuration(result.total_ms)))),
  );
}

/** Gives up the run: lets go of a hold, records what was done, shows the results. */
async function giveUp() {
  if (!state.run) return;
  if (state.reservation) {
    try {
      await api.release(state.reservation.reservation_id);
    } catch (err) {
      reportError(err);
    }
    state.reservation = null;
  }
  showScreen('done');
  byId('done-heading').textContent = t('done.headingRun');
  state.done = null;
  renderReservationResult();
  renderTimingTable(byId('timing-table'), state.attempt);
  announce(t('result.gaveUp'));
  await recordResult(null);
}

/** GET /me/practice: recent runs and the best per site. */
async function loadPracticeHistory() {
  const data = await api.practiceHistory();
  const section = byId('practice-history');
  const items = data.items ?? [];
  const best = Object.entries(data.best ?? {});
  section.hidden = items.length === 0 && best.length === 0;
  const head = (first) => el('thead', {}, el('tr', {},
    el('th', { scope: 'col' }, first),
    el('th', { scope: 'col' }, t('history.rivals')),
    el('th', { scope: 'col' }, t('history.faster')),
    el('th', { scope: 'col' }, t('history.gone')),
    el('th', { scope: 'col' }, t('history.seats')),
    el('th', { scope: 'col' }, t('history.total'))));
  const row = (label, r) => el('tr', {},
    el('th', { scope: 'row' }, label),
    el('td', {}, formatNumber(r.difficulty?.rivals ?? 0)),
    el('td', {}, r.faster_than_percent === null || r.faster_than_percent === undefined ? '—' : `${percent(r.faster_than_percent)}%`),
    el('td', {}, r.seats_gone_percent === null || r.seats_gone_percent === undefined ? '—' : `${percent(r.seats_gone_percent)}%`),
    el('td', {}, (r.seats ?? []).length ? `${r.seats.join(', ')}${r.grade ? ` (${t('result.gradeValue', { grade: r.grade })})` : ''}` : '—'),
    el('td', {}, formatDuration(r.total_ms)));
  byId('practice-recent').replaceChildren(
    el('caption', { id: 'practice-recent-caption' }, t('history.recent')),
    head(t('history.when')),
    el('tbody', {}, items.length
      ? items.map((r) => row(`${formatDateTime(r.recorded_at)} · ${t(`run.site.${r.site}`)}`, r))
      : el('tr', {}, el('td', { colspan: 6 }, t('history.empty')))));
  byId('practice-best').replaceChildren(
    el('caption', { id: 'practice-best-caption' }, t('history.best')),
    head(t('history.site')),
    el('tbody', {}, best.map(([site, r]) => row(t(`run.site.${site}`), r))));
}

// ---- the server clock in the header and the language switch --------------------------------------

function startHeaderClock() {
  const node = byId('header-clock');
  const tick = () => {
    const text = formatClock(serverNow());
    if (node.textContent !== text) node.textContent = text;
  };
  tick();
  setInterval(tick, 100);
}

/** After a language switch: redraw what JS wrote on the screen being shown. */
function relabel() {
  announce(''); // the last notice was in the other language
  if (state.me) byId('user-name').textContent = t('nav.loggedIn', { name: state.me.name, username: state.me.username });
  const screen = document.body.dataset.screen;
  if (state.concert) renderConcertFacts(state.concert, setLayout(state.concert.template_code));
  byId('run-title').textContent = state.run ? t('run.heading') : '';
  renderRunSettings();
  renderCrowd(null);
  seatMap.relabel();
  legendKey = '';
  renderLegend(seatMap.grades);
  if (state.zones?.length) {
    byId('zone-grid').dataset.key = '';
    renderZones();
  }
  if (screen === 'seats') {
    if (!state.reservation) byId('hold-timer').textContent = t('timer.notHeld');
    byId('seats-heading').textContent = t(state.zones !== null && state.zone === null ? 'seats.zonesHeading' : 'seats.heading');
    if (state.zone !== null) byId('zone-title').textContent = t('seats.zoneSeats', { zone: zoneName(state.zone) });
    renderSelection(seatMap.selectedSeats(), true);
  } else if (['price', 'booker', 'method', 'pay'].includes(screen) && state.reservation) {
    renderSelection(state.reservation.seatDetails, false);
    if (screen === 'price') goPrice();
    if (screen === 'pay') {
      byId('pay-amount').textContent = formatWon(state.reservation.amount);
      byId('release-button').textContent = t('pay.release');
      byId('pay-method').textContent = state.payMethod ? t(`method.${state.payMethod}`) : '';
      const balance = byId('balance').dataset.balance;
      if (balance !== undefined) renderBalance(Number(balance));
    }
  } else if (screen === 'done') {
    byId('done-heading').textContent = t(state.run ? 'done.headingRun' : 'done.heading');
    renderReservationResult();
    renderResult();
    renderTimingTable(byId('timing-table'), state.attempt);
  } else if (screen === 'queue') {
    const ahead = byId('queue-position').dataset.position;
    if (ahead !== undefined) byId('queue-position').textContent = t('queue.people', { n: formatNumber(ahead) });
  }
  if (state.concert) renderHistoryTable(byId('history-table'), loadHistory(state.concert.concert_id));
  if (!byId('practice-history').hidden) detach(loadPracticeHistory);
  if (screen === 'choose') detach(() => loadConcerts(false));
  if (['choose', 'done'].includes(screen)) detach(loadMyReservations);
  numberSteps();
}

// ---- wiring ---------------------------------------------------------------------------------------------------

function wire() {
  byId('login-form').addEventListener('submit', run('login', () =>
    login(byId('login-username').value.trim(), byId('login-password').value)));
  byId('signup-form').addEventListener('submit', run('signup', signup));
  byId('logout-button').addEventListener('click', run('logout', () => logout()));
  byId('nav-choose-button').addEventListener('click', run('choose', goChoose));

  byId('import-form').addEventListener('submit', run('import', importConcert));
  byId('concert-refresh-button').addEventListener('click', run('concerts', () => loadConcerts(false)));
  byId('concert-more-button').addEventListener('click', run('concerts', () => loadConcerts(true)));
  byId('concert-list').addEventListener('click', (event) => {
    const button = event.target.closest('button.concert-pick');
    if (button) run('open', () => pickConcert(button.dataset.concertId))();
  });

  byId('book-button').addEventListener('click', run('book', book));
  byId('leave-queue-button').addEventListener('click', run('leave', leaveQueue));

  byId('schedule-list').addEventListener('click', (event) => {
    const button = event.target.closest('button.schedule-pick');
    if (button) run('schedule', () => pickSchedule(button.dataset.scheduleId))();
  });
  byId('back-to-dates-button').addEventListener('click', run('dates', goDates));
  byId('hold-button').addEventListener('click', run('hold', hold));
  byId('waitlist-join-button').addEventListener('click', run('waitlist', joinWaitlist));
  byId('waitlist-pay-button').addEventListener('click', takeOffer);

  byId('charge-form').addEventListener('submit', run('charge', charge));
  byId('pay-button').addEventListener('click', run('pay', pay));
  byId('release-button').addEventListener('click', run('release', release));
  byId('practise-again-button').addEventListener('click', run('again', practiseAgain));

  byId('reservations-refresh-button').addEventListener('click', run('reservations', loadMyReservations));

  for (const button of document.querySelectorAll('[data-lang]')) {
    button.addEventListener('click', () => setLang(button.dataset.lang));
  }
  onLangChange(relabel);
  byId('run-form').addEventListener('submit', run('run', createRun));
  byId('run-copy-button').addEventListener('click', run('copy', copyRunLink));
  byId('give-up-button').addEventListener('click', run('give-up', giveUp));
  byId('captcha-form').addEventListener('submit', run('captcha', answerCaptcha));
  byId('captcha-new-button').addEventListener('click', run('captcha-new', newCaptcha));
  byId('zone-grid').addEventListener('click', (event) => {
    const button = event.target.closest('button.zone-pick');
    if (button) pickZone(Number(button.dataset.zone));
  });
  byId('back-to-zones-button').addEventListener('click', run('zones', backToZones));
  byId('price-form').addEventListener('submit', run('price', priceDone));
  byId('booker-form').addEventListener('submit', run('booker', bookerDone));
  byId('method-form').addEventListener('submit', run('method', methodDone));
  byId('my-reservations').addEventListener('click', (event) => {
    const button = event.target.closest('button.cancel-button');
    if (button) run(`cancel-${button.dataset.reservationId}`, () => cancelReservation(button))();
  });
}

/** Start: resume a session kept in this tab, or ask to log in. */
async function start() {
  applyStatic();
  wire();
  numberSteps();
  startHeaderClock();
  detach(() => syncClockIfStale(true));
  renderTimingTable(byId('timing-table'), null);
  renderHistoryTable(byId('history-table'), []);
  if (!session.token()) {
    showScreen('login', { focus: false });
    return;
  }
  showScreen('choose', { focus: false });
  try {
    await afterLogin();
  } catch (err) {
    reportError(err); // a 401 here returns to the login screen
  }
}

start();
