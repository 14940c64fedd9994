// ui.js — small DOM helpers shared by the screens: element lookup, the error and notice
// regions, screen switching, and per-screen timers that stop when the screen is left.

/** The element with this id (throws early if the markup lost a hook). */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
}

/** Creates an element: el('li', {class: 'x', dataset: {a: 1}}, 'text', child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** "154,000원" / "154,000 won": see i18n.js. */
export { formatWon } from './i18n.js';

// ---- error and notice regions -------------------------------------------------------------

/**
 * Shows an API error: the contract's message and its code, in #error (role=alert).
 * `prefix` adds our own explanation before the server's message.
 */
export function showError(err, prefix = '') {
  const box = byId('error');
  const message = err?.message || String(err);
  const code = err?.code;
  box.replaceChildren(
    prefix ? `${prefix} ` : '',
    el('span', { class: 'error-message' }, message),
    code ? el('span', { class: 'error-code' }, ` (${code})`) : '',
  );
}

/** Empties #error (only ever at the start of a new user action). */
export function clearError() {
  byId('error').replaceChildren();
}

/** Puts a short status message in #notice (role=status, announced politely). */
export function announce(message) {
  byId('notice').textContent = message;
}

// ---- screens ------------------------------------------------------------------------------

/**
 * Timers that belong to one screen. Everything scheduled through a scope stops when the
 * screen is left, and `active` tells an awaited response whether it still has a screen
 * to draw on.
 */
class Scope {
  constructor(name) {
    this.name = name;
    this.active = true;
    this.timeouts = new Set();
  }

  /** Runs fn once after ms, unless the screen was left. */
  after(ms, fn) {
    if (!this.active) return;
    const id = setTimeout(() => {
      this.timeouts.delete(id);
      if (this.active) fn();
    }, ms);
    this.timeouts.add(id);
  }

  /**
   * Runs async fn now and then again ms after each run ends (never two at once) until the
   * screen is left. A failed run goes to onError and polling goes on.
   */
  /** Runs `fn` now and again `ms` after each run ends (`ms` a number, or a function asked each time). */
  poll(ms, fn, onError) {
    const run = async () => {
      if (!this.active) return;
      try {
        await fn();
      } catch (err) {
        // A failure that arrives after the screen was left belongs to nothing on screen now.
        if (this.active) onError(err);
      }
      this.after(typeof ms === 'function' ? ms() : ms, run);
    };
    run();
  }

  close() {
    this.active = false;
    for (const id of this.timeouts) clearTimeout(id);
    this.timeouts.clear();
  }
}

let currentScope = new Scope('none');

/**
 * Switches to a screen: stops the previous screen's timers, sets body[data-screen], shows
 * every [data-screens] element listing this screen and hides the rest. Returns the new
 * screen's scope. Focus moves to the screen's heading (marked data-screen-heading) so
 * keyboard and screen-reader users land on the new content.
 */
export function showScreen(name, { focus = true } = {}) {
  currentScope.close();
  currentScope = new Scope(name);
  document.body.dataset.screen = name;
  for (const node of document.querySelectorAll('[data-screens]')) {
    node.hidden = !node.dataset.screens.split(/\s+/).includes(name);
  }
  for (const step of document.querySelectorAll('[data-step]')) {
    if (step.dataset.step === name) step.setAttribute('aria-current', 'step');
    else step.removeAttribute('aria-current');
  }
  if (focus) {
    const heading = document.querySelector(`[data-screen-heading~="${name}"]`);
    heading?.focus({ preventScroll: false });
  }
  return currentScope;
}

/** The scope of the screen being shown. */
export function scope() {
  return currentScope;
}
