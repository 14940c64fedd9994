// timing.js — the practice stopwatch. An attempt records server-clock timestamps for each
// step of the on-sale; when it ends we show how long each step took and keep the attempt
// in localStorage (per concert) so past attempts can be compared side by side.

import { formatDuration, formatDateTime } from './clock.js';
import { el } from './ui.js';

const HISTORY_PREFIX = 'onsale-practice.history.';
const HISTORY_LIMIT = 20;

/** The steps shown in both tables: label and how to compute the duration of an attempt. */
const STEPS = [
  { label: 'Open → in line', help: 'from the open time to holding a queue token', from: 'openRef', to: 'tokenAt' },
  { label: 'In line → admitted', help: 'waiting room', from: 'tokenAt', to: 'admittedAt' },
  { label: 'Admitted → seats held', help: 'choosing a date and seats', from: 'admittedAt', to: 'holdAt' },
  { label: 'Seats held → paid', help: 'payment', from: 'holdAt', to: 'paidAt' },
  { label: 'Total', help: 'open time to payment', from: 'openRef', to: 'paidAt', total: true },
];

const duration = (attempt, step) =>
  attempt[step.from] != null && attempt[step.to] != null ? attempt[step.to] - attempt[step.from] : null;

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
    holdAt: null,
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
    body.append(el('tr', {}, el('td', { colspan: 2 }, 'No attempt finished yet.')));
  } else {
    body.append(
      el('tr', {}, el('th', { scope: 'row' }, 'Counted from'),
        el('td', {}, attempt.openedBeforePage
          ? 'when the concert page appeared (the sale was already open)'
          : `the open time, ${formatDateTime(attempt.openAt, true)}`)),
      el('tr', {}, el('th', { scope: 'row' }, 'Reaction (open → Book pressed)'),
        el('td', {}, formatDuration(attempt.bookPressedAt - attempt.openRef))),
    );
    for (const step of STEPS) {
      body.append(
        el('tr', { class: step.total ? 'total' : '' },
          el('th', { scope: 'row' }, step.label, el('span', { class: 'step-help' }, ` (${step.help})`)),
          el('td', {}, formatDuration(duration(attempt, step)))),
      );
    }
  }
  table.replaceChildren(
    el('caption', {}, 'This attempt: time taken by each step (server clock)'),
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Step'), el('th', { scope: 'col' }, 'Time'))),
    body,
  );
}

/** Fills #history-table: one column per past attempt, newest first. */
export function renderHistoryTable(table, history) {
  const head = el('tr', {}, el('th', { scope: 'col' }, 'Step'));
  history.forEach((attempt, i) => {
    head.append(
      el('th', { scope: 'col' },
        i === 0 ? 'Latest' : `#${history.length - i}`,
        el('span', { class: 'attempt-date' }, formatDateTime(attempt.paidAt))),
    );
  });
  const body = el('tbody');
  if (history.length === 0) {
    body.append(el('tr', {}, el('td', {}, 'No past attempts for this concert yet.')));
  } else {
    for (const step of STEPS) {
      body.append(
        el('tr', { class: step.total ? 'total' : '' },
          el('th', { scope: 'row' }, step.label),
          ...history.map((attempt) => el('td', {}, formatDuration(duration(attempt, step))))),
      );
    }
    body.append(
      el('tr', {}, el('th', { scope: 'row' }, 'Seats'),
        ...history.map((attempt) => el('td', {}, attempt.seats?.join(', ') || '—'))),
      el('tr', {}, el('th', { scope: 'row' }, 'Layout'),
        ...history.map((attempt) => el('td', {}, attempt.layout || 'default'))),
    );
  }
  table.replaceChildren(
    el('caption', {}, 'Past attempts at this concert, newest first'),
    el('thead', {}, head),
    body,
  );
}
