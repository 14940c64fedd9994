// timing.js — the practice stopwatch. An attempt records server-clock timestamps for each
// step of the on-sale; when it ends we show how long each step took and keep the attempt
// in localStorage (per concert) so past attempts can be compared side by side.

import { formatDuration, formatDateTime } from './clock.js';
import { el } from './ui.js';
import { t } from './i18n.js';

const HISTORY_PREFIX = 'onsale-practice.history.';
const HISTORY_LIMIT = 20;

/**
 * The steps shown in both tables: the label's key (its help is key.help), the timestamps it
 * spans, and the step name sent with a practice result. Steps the attempt did not go
 * through (no security letters, the short flow of an ordinary concert) show "—" in the
 * history and are left out of this attempt's table.
 */
export const STEPS = [
  { key: 'timing.openToLine', from: 'openRef', to: 'tokenAt', name: 'line' },
  { key: 'timing.queue', from: 'tokenAt', to: 'admittedAt', name: 'queue' },
  { key: 'timing.dates', from: 'admittedAt', to: 'dateAt', name: 'date', optional: true },
  { key: 'timing.captcha', from: 'dateAt', to: 'captchaAt', name: 'captcha', optional: true },
  { key: 'timing.seats', from: 'seatsFrom', to: 'holdAt', name: 'seats', optional: true },
  { key: 'timing.admittedToHold', from: 'admittedAt', to: 'holdAt', summary: true },
  { key: 'timing.price', from: 'holdAt', to: 'priceAt', name: 'price', optional: true },
  { key: 'timing.booker', from: 'priceAt', to: 'bookerAt', name: 'booker', optional: true },
  { key: 'timing.method', from: 'bookerAt', to: 'methodAt', name: 'method', optional: true },
  { key: 'timing.pay', from: 'payFrom', to: 'paidAt', name: 'payment' },
  { key: 'timing.total', from: 'openRef', to: 'paidAt', total: true },
];

/** The derived start points: seats start after the letters (or the date); payment after the last step before it. */
function point(attempt, name) {
  if (name === 'seatsFrom') return attempt.captchaAt ?? attempt.dateAt ?? attempt.admittedAt;
  if (name === 'payFrom') return attempt.methodAt ?? attempt.holdAt;
  return attempt[name];
}

export const duration = (attempt, step) => {
  const from = point(attempt, step.from);
  const to = point(attempt, step.to);
  return from != null && to != null ? to - from : null;
};

/** The step times of an attempt for POST /practice/runs/{id}/results: [{step, ms}]. */
export function stepTimes(attempt) {
  const steps = [];
  if (attempt.bookPressedAt != null && attempt.openRef != null) {
    steps.push({ step: 'reaction', ms: Math.max(0, Math.round(attempt.bookPressedAt - attempt.openRef)) });
  }
  for (const step of STEPS) {
    if (!step.name) continue;
    const ms = duration(attempt, step);
    if (ms !== null) steps.push({ step: step.name, ms: Math.max(0, Math.round(ms)) });
  }
  return steps;
}

/**
 * Starts an attempt when the concert page is shown. The "open" reference is the booking
 * open time, or — when the sale was already open as the page appeared — the moment the
 * Book button was available to this attempt.
 */
export function newAttempt(concert, openAt, shownAt, layout) {
  return {
    concertId: concert.concert_id,
    layout,
    openAt,
    openRef: openAt !== null && openAt > shownAt ? openAt : shownAt,
    openedBeforePage: openAt !== null && openAt <= shownAt,
    bookPressedAt: null,
    tokenAt: null,
    admittedAt: null,
    dateAt: null,
    captchaAt: null,
    holdAt: null,
    priceAt: null,
    bookerAt: null,
    methodAt: null,
    paidAt: null,
    seats: [],
  };
}

/** Past attempts for a concert, newest first. */
export function loadHistory(concertId) {
  try {
    const list = JSON.parse(localStorage.getItem(HISTORY_PREFIX + concertId) || '[]');
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

/** Adds a finished attempt to the front of the concert's history. */
export function saveAttempt(attempt) {
  const history = [attempt, ...loadHistory(attempt.concertId)].slice(0, HISTORY_LIMIT);
  localStorage.setItem(HISTORY_PREFIX + attempt.concertId, JSON.stringify(history));
  return history;
}

/** Fills #timing-table with this attempt's step durations. */
export function renderTimingTable(table, attempt) {
  const body = el('tbody');
  if (!attempt) {
    body.append(el('tr', {}, el('td', { colspan: 2 }, t('timing.none'))));
  } else {
    body.append(
      el('tr', {}, el('th', { scope: 'row' }, t('timing.from')),
        el('td', {}, attempt.openedBeforePage
          ? t('timing.fromPage')
          : t('timing.fromOpen', { time: formatDateTime(attempt.openAt, true) }))),
      el('tr', {}, el('th', { scope: 'row' }, t('timing.reaction')),
        el('td', {}, formatDuration(attempt.bookPressedAt - attempt.openRef))),
    );
    for (const step of STEPS) {
      const ms = duration(attempt, step);
      if (step.optional && ms === null) continue;
      body.append(
        el('tr', { class: step.total ? 'total' : step.summary ? 'summary' : '', dataset: { step: step.name ?? '' } },
          el('th', { scope: 'row' }, t(step.key), el('span', { class: 'step-help' }, ` (${t(`${step.key}.help`)})`)),
          el('td', {}, formatDuration(ms))),
      );
    }
  }
  table.replaceChildren(
    el('caption', {}, t('timing.caption')),
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, t('timing.step')), el('th', { scope: 'col' }, t('timing.time')))),
    body,
  );
}

/** Fills #history-table: one column per past attempt, newest first. */
export function renderHistoryTable(table, history) {
  const head = el('tr', {}, el('th', { scope: 'col' }, t('timing.step')));
  history.forEach((attempt, i) => {
    head.append(
      el('th', { scope: 'col' },
        i === 0 ? t('timing.latest') : `#${history.length - i}`,
        el('span', { class: 'attempt-date' }, formatDateTime(attempt.paidAt))),
    );
  });
  const body = el('tbody');
  if (history.length === 0) {
    body.append(el('tr', {}, el('td', {}, t('timing.historyEmpty'))));
  } else {
    for (const step of STEPS) {
      if (step.optional && history.every((attempt) => duration(attempt, step) === null)) continue;
      body.append(
        el('tr', { class: step.total ? 'total' : '' },
          el('th', { scope: 'row' }, t(step.key)),
          ...history.map((attempt) => el('td', {}, formatDuration(duration(attempt, step))))),
      );
    }
    body.append(
      el('tr', {}, el('th', { scope: 'row' }, t('timing.seatsRow')),
        ...history.map((attempt) => el('td', {}, attempt.seats?.join(', ') || '—'))),
      el('tr', {}, el('th', { scope: 'row' }, t('timing.layoutRow')),
        ...history.map((attempt) => el('td', {}, attempt.layout || 'default'))),
    );
  }
  table.replaceChildren(
    el('caption', {}, t('timing.history')),
    el('thead', {}, head),
    body,
  );
}
