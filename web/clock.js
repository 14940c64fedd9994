// clock.js — the server's clock, as seen from this browser.
//
// The countdown, the hold timer and the practice timings must follow the server, not this
// device (whose clock may be seconds off). We ask GET /health for the server's `now`, measure
// the round trip, and keep `offset = server_now + rtt/2 - local_now` from the sample with the
// shortest round trip (the least uncertain one).

import { api } from './api.js';
import { t, locale } from './i18n.js';

const sync = {
  offsetMs: 0, // add to Date.now() to get the server's time
  rttMs: null, // round trip of the sample the offset came from
  syncedAt: null, // local time of the last successful sync
  source: 'device', // 'server' once the server reported its time
};

/** The server's current time in epoch milliseconds. */
export function serverNow() {
  return Date.now() + sync.offsetMs;
}

/** A copy of the current sync state, for display. */
export function clockInfo() {
  return { ...sync };
}

/**
 * Measures the offset with a few GET /health round trips. Resolves to clockInfo().
 * Throws the ApiError of a failed request; a health answer without `now` keeps the
 * device's own clock (source 'device').
 */
export async function syncClock(samples = 3) {
  let best = null;
  for (let i = 0; i < samples; i += 1) {
    const started = performance.now();
    let received = 0;
    let localAtReceipt = 0;
    const body = await api.health(() => {
      received = performance.now();
      localAtReceipt = Date.now();
    });
    const serverMs = parseTime(body?.now);
    if (serverMs === null) {
      sync.source = 'device';
      sync.offsetMs = 0;
      sync.rttMs = null;
      sync.syncedAt = Date.now();
      return clockInfo();
    }
    const rtt = received - started;
    const offset = serverMs + rtt / 2 - localAtReceipt;
    if (!best || rtt < best.rtt) best = { rtt, offset };
  }
  sync.offsetMs = Math.round(best.offset);
  sync.rttMs = Math.round(best.rtt);
  sync.syncedAt = Date.now();
  sync.source = 'server';
  return clockInfo();
}

/** Parses an RFC 3339 string (any number of fraction digits) to epoch ms, or null. */
export function parseTime(value) {
  if (typeof value !== 'string' || value === '') return null;
  // Some engines only accept up to 3 fraction digits: keep milliseconds.
  const normalised = value.replace(/(\.\d{3})\d+/, '$1');
  const ms = Date.parse(normalised);
  return Number.isNaN(ms) ? null : ms;
}

const pad = (n, width = 2) => String(n).padStart(width, '0');

/** "1d 02:03:04.5", "00:00:09.8": a countdown with tenths of a second. */
export function formatCountdown(ms) {
  const clamped = Math.max(0, ms);
  const tenths = Math.floor(clamped / 100);
  const days = Math.floor(tenths / 864000);
  const hours = Math.floor(tenths / 36000) % 24;
  const minutes = Math.floor(tenths / 600) % 60;
  const seconds = Math.floor(tenths / 10) % 60;
  const text = `${pad(hours)}:${pad(minutes)}:${pad(seconds)}.${tenths % 10}`;
  return days > 0 ? `${days}d ${text}` : text;
}

/** "04:59": minutes and seconds, rounded up so 0 shows only when the time is really up. */
export function formatMinutesSeconds(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  return `${pad(Math.floor(total / 60))}:${pad(total % 60)}`;
}

/** "0.842 s", "1 min 02.310 s" (ko: "0.842초"): a step's duration; "—" when unknown. */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  const sign = ms < 0 ? '−' : '';
  const abs = Math.abs(ms);
  if (abs < 60000) return sign + t('dur.s', { v: (abs / 1000).toFixed(3) });
  const minutes = Math.floor(abs / 60000);
  if (minutes >= 60) return sign + t('dur.h', { h: Math.floor(minutes / 60), m: minutes % 60 });
  return sign + t('dur.min', { m: minutes, s: pad(((abs % 60000) / 1000).toFixed(3), 6) });
}

/** "about 1 min 5 s" (ko: "약 1분 5초") for a wait in seconds. */
export function formatWait(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return t('wait.unknown');
  const s = Math.max(0, Math.round(Number(seconds)));
  if (s < 60) return t('wait.seconds', { s });
  return t('wait.minutes', { m: Math.floor(s / 60), s: s % 60 });
}

/** A date and time in Korea time, e.g. "2026년 12월 14일 (일) 19:00 KST" / "Sun, 14 Dec 2026, 19:00 KST". */
export function formatDateTime(value, withSeconds = false) {
  const ms = typeof value === 'number' ? value : parseTime(value);
  if (ms === null) return t('msg.notSet');
  const text = new Intl.DateTimeFormat(locale(), {
    timeZone: 'Asia/Seoul',
    weekday: 'short',
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: withSeconds ? '2-digit' : undefined,
    hourCycle: 'h23',
  }).format(ms);
  return `${text} KST`;
}

const seoulClock = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'Asia/Seoul', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});

/** "14:03:05.2": a Korea-time clock time with tenths, for the server clock display. */
export function formatClock(ms) {
  return `${seoulClock.format(ms)}.${Math.floor((((ms % 1000) + 1000) % 1000) / 100)}`;
}
