// app.js — the practice flow, screen by screen:
// login → choose → concert → queue → dates → seats → pay → done (→ practise again).
//
// Each screen has a `go…` function that switches to it (ui.showScreen stops the previous
// screen's timers) and starts whatever that screen polls. User actions run through `run`,
// which clears the last error first and shows any failure in #error; nothing is swallowed.

import { api, session, ApiError, newIdempotencyKey } from './api.js';
import {
  syncClock, serverNow, clockInfo, parseTime, formatCountdown, formatMinutesSeconds,
  formatDateTime, formatWait, formatClock,
} from './clock.js';
import { byId, el, formatWon, showError, clearError, announce, showScreen, scope } from './ui.js';
import { SeatMap, sectionName } from './seatmap.js';
import { newAttempt, saveAttempt, loadHistory, renderTimingTable, renderHistoryTable } from './timing.js';

/** The booking-page layouts we can imitate, with how they are described to the user. */
const LAYOUTS = {
  interpark: 'Step tabs on top, seat map left, sidebar right',
  yes24: 'Step list on the left, timer bar on top',
  melon: 'Full-width seat map, bottom bar',
  ticketlink: 'Step tabs on top, sidebar left',
  default: 'Simple single column',
};
const MAX_SEATS = 4;
const QUEUE_POLL_MS = 1000;
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
    logout('Your login has expired. Please log in again.');
  } else if (QUEUE_TOKEN_CODES.has(err.code) && state.concert) {
    state.queueToken = null;
    openConcert(state.concert);
    announce('Your place in the waiting room has ended. Press Book to practise again.');
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
    reportError(err, "Could not read the server's clock, so this device's clock is used.");
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
  announce('Account created. Logging you in…');
  for (const id of ['signup-username', 'signup-password', 'signup-name']) byId(id).value = '';
  await login(username, password);
}

/** Loads the user, restores the last URL they entered, syncs the clock, shows the chooser. */
async function afterLogin() {
  const me = await api.me();
  state.me = me;
  byId('user-name').textContent = `Logged in as ${me.name} (${me.username})`;
  announce(`Welcome, ${me.name}.`);
  if (me.last_entered_url) byId('import-url').value = me.last_entered_url;
  await syncClockIfStale(true);
  goChoose();
}

function logout(message = 'You are logged out.') {
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
        el('span', { class: 'pick-meta' }, `Booking opens ${formatDateTime(concert.booking_opens_at)}`),
        concert.status ? el('span', { class: `badge status-${concert.status}` }, concert.status) : '')));
  }
  if (!list.children.length) list.append(el('li', { class: 'empty' }, 'No concerts yet: import a sale page above.'));
  state.concertsCursor = page.next_cursor ?? null;
  byId('concert-more-button').hidden = !state.concertsCursor;
}

async function importConcert() {
  const url = byId('import-url').value.trim();
  const concert = await api.importConcert(url);
  announce(`Imported “${concert.title}”.`);
  openConcert(concert);
}

async function pickConcert(concertId) {
  openConcert(await api.concert(concertId));
}

// ---- concert page with countdown --------------------------------------------------------------

/** Shows a concert's page, starts a fresh attempt and the countdown to its open time. */
function openConcert(concert) {
  state.concert = concert;
  state.queueToken = null;
  state.reservation = null;
  state.schedule = null;
  seatMap.reset();
  const layout = setLayout(concert.template_code);

  byId('concert-title').textContent = concert.title ?? 'Untitled concert';
  byId('concert-category').textContent = concert.category ?? '';
  byId('concert-artist').textContent = concert.artist || '—';
  byId('concert-venue').textContent = concert.venue || '—';
  byId('concert-opens').textContent = formatDateTime(concert.booking_opens_at, true);
  byId('concert-closes').textContent = formatDateTime(concert.booking_closes_at);
  byId('concert-status').textContent = concert.status ?? '—';
  byId('concert-layout').textContent = LAYOUTS[layout];
  byId('concert-description').textContent = concert.description ?? '';
  renderPoster(concert);
  const source = byId('concert-source');
  const sourceUrl = safeUrl(concert.source_url);
  source.replaceChildren(...(sourceUrl
    ? ['Imported from ', el('a', { href: sourceUrl, rel: 'noopener noreferrer', target: '_blank' }, new URL(sourceUrl).host)]
    : []));
  renderHistoryTable(byId('history-table'), loadHistory(concert.concert_id));

  const sc = showScreen('concert');
  const opensAt = parseTime(concert.booking_opens_at);
  state.attempt = newAttempt(concert, opensAt, serverNow(), layout);
  detach(() => syncClockIfStale());
  startCountdown(sc, concert, opensAt, parseTime(concert.booking_closes_at));
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
    img.alt = `Poster: ${concert.title ?? 'concert'}`;
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
      text = 'Cancelled';
    } else if (opensAt === null) {
      open = concert.status === 'BOOKING_OPEN';
      text = open ? 'Open now' : 'Open time not announced';
    } else if (now < opensAt) {
      caption = 'Opens in';
      text = formatCountdown(opensAt - now);
      for (const [mark, words] of [[60_000, '1 minute'], [10_000, '10 seconds']]) {
        if (opensAt - now <= mark && opensAt - now > mark - 1000 && !warned.has(mark)) {
          warned.add(mark);
          announce(`Booking opens in ${words}.`);
        }
      }
    } else if (closesAt !== null && now >= closesAt) {
      text = 'Closed';
    } else {
      open = true;
      text = 'Open now';
    }
    if (countdown.textContent !== text) countdown.textContent = text;
    if (label.textContent !== caption) label.textContent = caption;
    if (button.disabled === open) {
      button.disabled = !open;
      if (open && !state.attempt.openedBeforePage) announce('Booking is open now. Press Book!');
    }
    const { source, offsetMs } = clockInfo();
    clock.textContent = source === 'server'
      ? `Server time ${formatClock(now)} (this device is ${Math.abs(offsetMs)} ms ${offsetMs >= 0 ? 'behind' : 'ahead'})`
      : `Time ${formatClock(now)} (this device's clock: the server did not report its time)`;

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
  byId('queue-wait').textContent = '—';
  state.lastQueueAnnounce = 0;
  renderQueue(first);
  sc.poll(QUEUE_POLL_MS, () => pollQueue(sc), reportError);
}

async function pollQueue(sc) {
  const status = await api.queueStatus(state.queueToken);
  if (!sc.active) return;
  if (status.status === 'ACTIVE') {
    detach(admitted);
    return;
  }
  if (status.status === 'EXPIRED') {
    showError({ message: 'Your place in the waiting room expired before you were let in (status EXPIRED).' });
    detach(() => openConcert(state.concert));
    return;
  }
  renderQueue(status);
  if (Date.now() - state.lastQueueAnnounce >= QUEUE_ANNOUNCE_MS) {
    state.lastQueueAnnounce = Date.now();
    announce(`${status.position} people ahead of you, estimated wait ${formatWait(status.estimated_wait_seconds)}.`);
  }
}

function renderQueue(status) {
  const position = Number(status.position ?? 0);
  byId('queue-position').textContent = String(position);
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
  announce('You left the line.');
  openConcert(state.concert);
}

/** The queue said ACTIVE: note the time and go to the dates. */
async function admitted() {
  state.attempt.admittedAt ??= serverNow();
  announce("You're in! Choose a date.");
  await goDates();
}

// ---- dates -------------------------------------------------------------------------------------

async function goDates() {
  const sc = showScreen('dates');
  seatMap.reset();
  const list = byId('schedule-list');
  list.replaceChildren(el('li', { class: 'empty' }, 'Loading dates…'));
  const data = await api.schedules(state.concert.concert_id, state.queueToken);
  if (!sc.active) return;
  list.replaceChildren();
  for (const schedule of data.items ?? []) {
    list.append(el('li', {},
      el('button', { type: 'button', class: 'schedule-pick', dataset: { scheduleId: schedule.schedule_id } },
        el('span', { class: 'pick-title' }, formatDateTime(schedule.starts_at)),
        el('span', { class: 'pick-meta' }, `${schedule.available_seats ?? '?'} of ${schedule.total_seats ?? '?'} seats left`))));
  }
  if (!list.children.length) list.append(el('li', { class: 'empty' }, 'No dates are on sale for this concert.'));
  state.schedules = data.items ?? [];
}

function pickSchedule(scheduleId) {
  if (state.schedule?.schedule_id !== scheduleId) state.onWaitlist = false;
  state.schedule = (state.schedules ?? []).find((s) => s.schedule_id === scheduleId) ?? { schedule_id: scheduleId };
  seatMap.reset();
  goSeats();
}

// ---- seat map and hold ------------------------------------------------------------------------------

function goSeats() {
  const sc = showScreen('seats');
  if (!state.onWaitlist) {
    byId('waitlist-join-button').hidden = false;
    byId('waitlist-pay-button').hidden = true;
  }
  byId('seats-date').textContent = state.schedule.starts_at ? `Date: ${formatDateTime(state.schedule.starts_at)}` : '';
  byId('seat-message').textContent = '';
  const timer = byId('hold-timer');
  timer.textContent = 'not held yet';
  timer.classList.remove('warning');
  renderSelection(seatMap.selectedSeats(), true);
  if (!seatMap.buttons.size) byId('seat-map').replaceChildren(el('p', { class: 'empty' }, 'Loading seats…'));
  sc.poll(SEAT_POLL_MS, () => refreshSeats(sc), reportError);
}

/** One refresh of the map; seats someone else took out of my selection are reported. */
async function refreshSeats(sc) {
  if (document.hidden && seatMap.buttons.size) return; // nobody is looking: skip this round
  const data = await api.seats(state.schedule.schedule_id, state.queueToken);
  if (!sc.active) return;
  const lost = seatMap.update(data.items ?? []);
  renderLegend(seatMap.grades);
  renderLimit(data.ticket_limit);
  if (lost.length) seatMessage(`Someone else just took seat(s) ${lost.join(', ')}; removed from your choice.`);
  const soldOut = (data.items ?? []).length > 0 && data.items.every((seat) => seat.status !== 'AVAILABLE');
  byId('waitlist-box').hidden = !(soldOut || state.onWaitlist);
  if (state.onWaitlist) await refreshWaitlist();
}

/** The ticket limit: how many more seats of this date the fan may take. */
function renderLimit(limit) {
  if (!limit) return;
  const remaining = Number(limit.remaining ?? 0);
  seatMap.maxSelected = Math.max(0, Math.min(MAX_SEATS, remaining));
  byId('ticket-limit').textContent = remaining > 0
    ? `You may take ${remaining} more seat(s) for this date (limit ${limit.limit} per person).`
    : `You have reached the limit of ${limit.limit} seats per person for this date.`;
}

// ---- waiting list ---------------------------------------------------------------------------------

async function joinWaitlist() {
  const count = Number(byId('waitlist-count').value);
  const entry = await api.joinWaitlist(state.schedule.schedule_id, count, state.queueToken);
  state.onWaitlist = true;
  renderWaitlist(entry);
  announce('You are on the waiting list. Stay on this page: seats that come free are offered in turn.');
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
      status.textContent = `On the waiting list for ${entry.count} seat(s): ${entry.ahead ?? 0} ahead of you.`;
      break;
    case 'OFFERED':
      if (entry.offer) {
        state.offer = entry.offer;
        const seats = (entry.offer.reservation.seats ?? []).map((s) => s.seat_no).join(', ');
        status.textContent = `Seat(s) ${seats} came free and are held for you until ${formatDateTime(entry.offer.expires_at)}.`;
        payButton.hidden = false;
      }
      break;
    case 'PASSED':
      status.textContent = 'The offered seats were not paid in time and went to the next in line.';
      state.onWaitlist = false;
      break;
    default:
      state.onWaitlist = false;
      status.textContent = `Waiting list: ${entry.status}.`;
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
  announce('The offered seats are yours to pay for.');
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
    el('span', {}, `Seat ${seat.seat_no}`,
      seat.section !== undefined ? el('span', { class: 'seat-detail' },
        ` · ${sectionName(seat.section)}, row ${seat.row}, ${seat.grade}`) : '',
      el('span', { class: 'seat-price' }, ` · ${formatWon(seat.price)}`)),
    removable ? el('button', {
      type: 'button', class: 'link-button remove-seat', 'aria-label': `Remove seat ${seat.seat_no}`,
      onclick: () => seatMap.deselect(seat.seat_no),
    }, 'Remove') : '')));
  if (!seats.length) list.append(el('li', { class: 'empty' }, 'No seats chosen yet.'));
  byId('selected-total').textContent = formatWon(seats.reduce((sum, s) => sum + Number(s.price ?? 0), 0));
  byId('hold-button').disabled = seats.length === 0;
  if (removable && seats.length) byId('seat-message').textContent = `${seats.length} of ${MAX_SEATS} seats chosen.`;
}

async function hold() {
  const seats = seatMap.selectedSeats();
  if (!seats.length) {
    seatMessage('Choose at least one seat first.');
    return;
  }
  const seatNos = seats.map((s) => s.seat_no);
  let reservation;
  try {
    reservation = await api.hold(state.schedule.schedule_id, seatNos, state.queueToken);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'TICKET_LIMIT_REACHED') {
      const d = err.details ?? {};
      seatMessage(`That would pass the limit of ${d.limit} seats per person for this date (you have ${d.taken}).`);
      await refreshSeats(scope());
      return;
    }
    if (err instanceof ApiError && err.code === 'RATE_LIMITED' && err.details?.reason === 'hold_cooldown') {
      seatMessage(`You gave back or let run out too many holds of this date: wait ${err.details.retry_after_seconds} s before holding seats again.`);
      return;
    }
    if (!(err instanceof ApiError) || err.code !== 'SEAT_UNAVAILABLE') throw err;
    const taken = Array.isArray(err.details?.seat_nos) ? err.details.seat_nos : seatNos;
    reportError(err, `Someone else got seat(s) ${taken.join(', ')}.`);
    for (const no of taken) seatMap.deselect(no);
    seatMessage(`Seat(s) ${taken.join(', ')} went to someone else. Choose again.`);
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
  announce(`Seat(s) ${seatNos.join(', ')} are held for you. Pay before the timer runs out.`);
  goPay();
}

// ---- payment ------------------------------------------------------------------------------------

function goPay() {
  const sc = showScreen('pay');
  const r = state.reservation;
  byId('pay-amount').textContent = formatWon(r.amount);
  byId('seat-message').textContent = '';
  byId('release-button').textContent = 'Give back these seats';
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
    timer.textContent = left > 0 ? `${formatMinutesSeconds(left)} left` : 'expired';
    timer.classList.toggle('warning', left <= 60_000);
    for (const [mark, words] of [[60_000, '1 minute'], [10_000, '10 seconds']]) {
      if (left <= mark && left > 0 && !warned.has(mark)) {
        warned.add(mark);
        if (left > mark - 1000) announce(`${words} left to pay for your seats.`);
      }
    }
    if (left > 0) sc.after(Math.min(250, left), tick);
    else announce('Your seat hold has expired. Give the seats back and choose again.');
  };
  if (expiresAt === null) timer.textContent = 'held (no expiry given)';
  else tick();
}

async function loadBalance() {
  const { balance } = await api.balance();
  renderBalance(balance);
}

function renderBalance(balance) {
  const node = byId('balance');
  node.textContent = formatWon(balance);
  node.dataset.balance = String(balance);
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
  announce(`Charged ${formatWon(amount)}. Your practice balance is ${formatWon(answer.balance)}.`);
}

/** Errors after which the hold is gone and the seats must be chosen again. */
const HOLD_GONE = {
  INSUFFICIENT_BALANCE: (d) => `Not enough practice balance${d?.balance !== undefined ? ` (you have ${formatWon(d.balance)}, the seats cost ${formatWon(d.amount)})` : ''}: nothing was paid and the seats were given back. Charge your balance and choose seats again.`,
  RESERVATION_EXPIRED: () => 'The hold ran out before paying. Choose seats again.',
  RESERVATION_NOT_PAYABLE: () => 'This hold can no longer be paid.',
};

async function pay() {
  const r = state.reservation;
  if (!r) {
    showError({ message: 'There is no seat hold to pay for. Choose seats again.' });
    return;
  }
  let payment;
  try {
    payment = await api.pay(r.reservation_id, state.queueToken, state.payKey);
  } catch (err) {
    if (!(err instanceof ApiError) || !HOLD_GONE[err.code]) throw err;
    reportError(err, HOLD_GONE[err.code](err.details));
    announce('Your seat hold has ended without payment.');
    state.reservation = null;
    byId('hold-timer').textContent = 'released';
    byId('release-button').textContent = 'Choose seats again';
    byId('pay-button').disabled = true;
    detach(loadBalance);
    return;
  }
  state.attempt.paidAt = serverNow();
  let confirmed = { ...r, status: 'CONFIRMED' };
  try {
    confirmed = await api.reservation(r.reservation_id);
  } catch (err) {
    reportError(err, 'Paid, but the booking could not be re-read:');
  }
  goDone({ ...confirmed, seatDetails: r.seatDetails }, payment);
}

async function release() {
  const r = state.reservation;
  if (r) {
    await api.release(r.reservation_id);
    state.reservation = null;
    announce('Your seats were given back.');
  }
  goSeats();
}

// ---- done, timings, practise again ---------------------------------------------------------------------

function goDone(reservation, payment) {
  showScreen('done');
  const history = saveAttempt(state.attempt);
  renderTimingTable(byId('timing-table'), state.attempt);
  renderHistoryTable(byId('history-table'), history);
  const seats = reservation.seatDetails ?? reservation.seats ?? [];
  byId('reservation-result').replaceChildren(
    el('p', { class: 'result-status' }, 'Status ',
      el('strong', { class: `badge status-${reservation.status}`, dataset: { status: reservation.status } }, reservation.status)),
    el('dl', { class: 'facts' },
      el('div', {}, el('dt', {}, 'Reservation'), el('dd', {}, el('code', { class: 'reservation-id' }, reservation.reservation_id))),
      el('div', {}, el('dt', {}, 'Concert'), el('dd', {}, reservation.concert_title ?? state.concert.title)),
      el('div', {}, el('dt', {}, 'Date'), el('dd', {}, formatDateTime(reservation.starts_at ?? state.schedule?.starts_at))),
      el('div', {}, el('dt', {}, 'Seats'), el('dd', {}, seats.map((s) => s.seat_no).join(', '))),
      el('div', {}, el('dt', {}, 'Paid'), el('dd', {}, formatWon(payment.amount))),
      el('div', {}, el('dt', {}, 'Balance after'), el('dd', {}, formatWon(payment.balance_after)))),
  );
  announce(`Booked! Reservation ${reservation.status}.`);
  state.queueToken = null; // a payment uses the queue token up
  state.reservation = null;
  detach(loadMyReservations);
}

async function practiseAgain() {
  let concert = state.concert;
  try {
    concert = await api.concert(concert.concert_id);
  } catch (err) {
    reportError(err, 'Could not refresh the concert; practising with what we had:');
  }
  openConcert(concert);
}

// ---- my reservations ----------------------------------------------------------------------------------------

async function loadMyReservations() {
  const data = await api.myReservations();
  const list = byId('my-reservations');
  list.replaceChildren(...(data.items ?? []).map(renderReservation));
  if (!list.children.length) list.append(el('li', { class: 'empty' }, 'No reservations yet.'));
}

function renderReservation(r) {
  const refund = r.refund ?? state.refunds.get(r.reservation_id);
  const seats = (r.seats ?? []).map((s) => s.seat_no).join(', ');
  return el('li', { class: 'my-reservation', dataset: { status: r.status, reservationId: r.reservation_id } },
    el('div', { class: 'res-main' },
      el('strong', {}, r.concert_title ?? 'Concert'),
      el('span', { class: 'pick-meta' }, `${formatDateTime(r.starts_at)} · seat(s) ${seats} · ${formatWon(r.amount ?? 0)}`),
      refund !== undefined && refund !== null ? el('span', { class: 'refund' }, `Refunded ${formatWon(refund)}`) : ''),
    el('span', { class: `badge status-${r.status}` }, r.status),
    r.status === 'CONFIRMED'
      ? el('button', {
        type: 'button', class: 'secondary cancel-button', dataset: { reservationId: r.reservation_id },
        'aria-label': `Cancel booking of seat(s) ${seats} for ${r.concert_title ?? 'this concert'}`,
      }, 'Cancel booking')
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
      announce(`This booking cannot be cancelled: ${terms.reason}.`);
      button.textContent = 'Cannot be cancelled';
      button.disabled = true;
      return;
    }
    button.dataset.confirm = 'yes';
    button.textContent = terms.fee > 0
      ? `Confirm: refund ${formatWon(terms.refund)} (fee ${formatWon(terms.fee)})`
      : `Confirm: full refund of ${formatWon(terms.refund)}`;
    announce(button.textContent);
    return;
  }
  const answer = await api.cancel(id);
  state.refunds.set(id, answer.refund);
  announce(`Booking cancelled: ${formatWon(answer.refund ?? 0)} refunded to your practice balance.`);
  await loadMyReservations();
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
  byId('my-reservations').addEventListener('click', (event) => {
    const button = event.target.closest('button.cancel-button');
    if (button) run(`cancel-${button.dataset.reservationId}`, () => cancelReservation(button))();
  });
}

/** Start: resume a session kept in this tab, or ask to log in. */
async function start() {
  wire();
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
