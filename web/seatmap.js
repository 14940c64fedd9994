// seatmap.js — the seat map: one <button class="seat"> per seat, grouped by section and row.
//
// `update(items)` is called with every refresh of GET /schedules/{id}/seats. It changes only
// what changed (status, label), so the user's selection and keyboard focus survive refreshes.
// Keyboard: the map is one Tab stop (roving tabindex); arrow keys move between seats,
// Home/End jump to the ends of a row, Enter/Space choose (native <button> behaviour).

import { el, formatWon } from './ui.js';
import { t, lang } from './i18n.js';

const statusWord = (status) => (['AVAILABLE', 'HELD', 'BOOKED'].includes(status) ? t(`seat.${status}`) : String(status).toLowerCase());
const GRADE_COLOURS = 8; // style.css defines .grade-0 … .grade-7

/** "VIP section" in English (without doubling a name that already says "section"); the name as is in Korean. */
export function sectionName(section) {
  const name = String(section ?? '');
  if (lang() === 'ko' || /section$|구역$/i.test(name.trim())) return name;
  return `${name} section`;
}

/** The accessible name of a seat, e.g. "Seat 12, VIP section, row 1, grade VIP, 154,000 won, available". */
export function seatLabel(seat) {
  return t('seat.label', {
    no: seat.seat_no, section: sectionName(seat.section), row: seat.row, grade: seat.grade,
    price: formatWon(seat.price), status: statusWord(seat.status),
  });
}

/** Rows are numbers in the contract; sort numerically, and names (if any) naturally. */
function compareRows(a, b) {
  return typeof a === 'number' && typeof b === 'number'
    ? a - b
    : String(a).localeCompare(String(b), undefined, { numeric: true });
}

export class SeatMap {
  /**
   * @param {HTMLElement} container  #seat-map
   * @param {object} opts
   * @param {number} opts.maxSelected          most seats one hold may take
   * @param {function} opts.onChange           (selectedSeats) after the selection changed
   * @param {function} opts.onRefused          (message) when a choice was refused
   */
  constructor(container, { maxSelected, onChange, onRefused }) {
    this.container = container;
    this.maxSelected = maxSelected;
    this.onChange = onChange;
    this.onRefused = onRefused;
    this.reset();
    container.addEventListener('click', (event) => {
      const button = event.target.closest('button.seat');
      if (button) this.toggle(Number(button.dataset.seatNo));
    });
    container.addEventListener('keydown', (event) => this.onKey(event));
    container.addEventListener('focusin', (event) => {
      const button = event.target.closest('button.seat');
      if (button) this.setFocusable(Number(button.dataset.seatNo));
    });
  }

  /** Forgets everything (a new schedule). */
  reset() {
    this.seats = new Map(); // seat_no → item
    this.buttons = new Map(); // seat_no → button
    this.selected = new Set(); // seat_nos chosen by me
    this.rows = []; // display order: arrays of seat_nos, one per row
    this.position = new Map(); // seat_no → [rowIndex, columnIndex]
    this.structure = null; // the first update always draws (even an empty map)
    this.focusNo = null;
    this.grades = []; // [{grade, price, colour}] most expensive first
    this.container.replaceChildren();
  }

  /** The chosen seats' items, in seat number order. */
  selectedSeats() {
    return [...this.selected].sort((a, b) => a - b).map((no) => this.seats.get(no)).filter(Boolean);
  }

  /** Clears the selection (e.g. after a successful hold). */
  clearSelection() {
    for (const no of this.selected) this.buttons.get(no)?.setAttribute('aria-pressed', 'false');
    this.selected.clear();
    this.onChange(this.selectedSeats());
  }

  /** Unselects one seat. */
  deselect(no) {
    if (!this.selected.delete(no)) return;
    this.buttons.get(no)?.setAttribute('aria-pressed', 'false');
    this.onChange(this.selectedSeats());
  }

  /** Chooses or un-chooses a seat, refusing unavailable seats and a fifth seat. */
  toggle(no) {
    const seat = this.seats.get(no);
    if (!seat) return;
    if (this.selected.has(no)) {
      this.deselect(no);
      return;
    }
    if (seat.status !== 'AVAILABLE') {
      this.onRefused(t('seat.taken', { no }));
      return;
    }
    if (this.selected.size >= this.maxSelected) {
      this.onRefused(t('seat.max', { max: this.maxSelected, no }));
      return;
    }
    this.selected.add(no);
    this.buttons.get(no)?.setAttribute('aria-pressed', 'true');
    this.onChange(this.selectedSeats());
  }

  /**
   * Applies a fresh seat list. Returns the seat numbers that were selected but are no
   * longer available (someone else held or booked them); they are unselected.
   */
  update(items) {
    const sorted = [...items].sort((a, b) => a.seat_no - b.seat_no);
    const structure = sorted.map((s) => `${s.seat_no}:${s.section}:${s.row}`).join('|');
    if (structure !== this.structure) this.rebuild(sorted, structure);

    const lost = [];
    for (const seat of sorted) {
      const previous = this.seats.get(seat.seat_no);
      this.seats.set(seat.seat_no, seat);
      const button = this.buttons.get(seat.seat_no);
      if (previous && previous.status === seat.status && previous.price === seat.price) continue;
      button.dataset.status = seat.status;
      button.setAttribute('aria-label', seatLabel(seat));
      button.setAttribute('aria-disabled', seat.status === 'AVAILABLE' ? 'false' : 'true');
      if (seat.status !== 'AVAILABLE' && this.selected.has(seat.seat_no)) {
        this.selected.delete(seat.seat_no);
        button.setAttribute('aria-pressed', 'false');
        lost.push(seat.seat_no);
      }
    }
    if (lost.length) this.onChange(this.selectedSeats());
    return lost;
  }

  /** Redraws the whole map (first load, or the seat list itself changed). */
  rebuild(sorted, structure) {
    const hadFocus = this.container.contains(document.activeElement) ? this.focusNo : null;
    this.structure = structure;
    this.seats = new Map();
    this.buttons = new Map();
    this.rows = [];
    this.position = new Map();
    this.selected = new Set([...this.selected].filter((no) => sorted.some((s) => s.seat_no === no)));

    // Grades, most expensive first, each with a colour class.
    const gradePrice = new Map();
    for (const seat of sorted) gradePrice.set(seat.grade, Math.max(gradePrice.get(seat.grade) ?? 0, seat.price));
    this.grades = [...gradePrice.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([grade, price], i) => ({ grade, price, colour: `grade-${i % GRADE_COLOURS}` }));
    const colourOf = new Map(this.grades.map((g) => [g.grade, g.colour]));

    // Sections in order of their first seat; rows in number order within each.
    const sections = new Map();
    for (const seat of sorted) {
      if (!sections.has(seat.section)) sections.set(seat.section, new Map());
      const rows = sections.get(seat.section);
      if (!rows.has(seat.row)) rows.set(seat.row, []);
      rows.get(seat.row).push(seat);
    }

    const blocks = [];
    let sectionIndex = 0;
    for (const [section, rows] of sections) {
      const headingId = `seat-section-${sectionIndex += 1}`;
      const sectionSeats = [...rows.values()].flat();
      const grades = [...new Set(sectionSeats.map((s) => s.grade))];
      const prices = [...new Set(sectionSeats.map((s) => s.price))].sort((a, b) => b - a);
      const block = el('div', { class: 'seat-section', role: 'group', 'aria-labelledby': headingId },
        el('h3', { id: headingId },
          sectionName(section),
          el('span', { class: 'section-meta' }, t('seat.sectionMeta', { grades: grades.join(', '), prices: prices.map(formatWon).join(' / ') }))));
      for (const rowNo of [...rows.keys()].sort(compareRows)) {
        const rowSeats = rows.get(rowNo);
        const rowIndex = this.rows.length;
        this.rows.push(rowSeats.map((s) => s.seat_no));
        const row = el('div', { class: 'seat-row' }, el('span', { class: 'row-label', 'aria-hidden': 'true' }, t('seat.row', { row: rowNo })));
        rowSeats.forEach((seat, column) => {
          this.position.set(seat.seat_no, [rowIndex, column]);
          const button = el('button', {
            type: 'button',
            class: `seat ${colourOf.get(seat.grade)}`,
            dataset: { seatNo: seat.seat_no, grade: seat.grade },
            'aria-pressed': this.selected.has(seat.seat_no) ? 'true' : 'false',
            tabindex: '-1',
          }, String(seat.seat_no));
          this.buttons.set(seat.seat_no, button);
          row.append(button);
        });
        block.append(row);
      }
      blocks.push(block);
    }
    this.container.replaceChildren(...blocks);
    if (!blocks.length) this.container.append(el('p', { class: 'empty' }, t('seats.none')));

    const keep = this.focusNo !== null && this.buttons.has(this.focusNo) ? this.focusNo : sorted[0]?.seat_no ?? null;
    this.focusNo = null;
    if (keep !== null) this.setFocusable(keep);
    if (hadFocus !== null && this.buttons.has(hadFocus)) this.buttons.get(hadFocus).focus();
  }

  /** Redraws every label in the current language (after a language switch). */
  relabel() {
    if (!this.seats.size) return;
    const items = [...this.seats.values()];
    this.structure = null;
    this.seats = new Map();
    this.update(items);
  }

  /** Makes one seat the map's single Tab stop. */
  setFocusable(no) {
    if (this.focusNo === no) return;
    this.buttons.get(this.focusNo)?.setAttribute('tabindex', '-1');
    this.buttons.get(no)?.setAttribute('tabindex', '0');
    this.focusNo = no;
  }

  /** Arrow keys, Home and End move focus between seats. */
  onKey(event) {
    const button = event.target.closest('button.seat');
    if (!button) return;
    const [r, c] = this.position.get(Number(button.dataset.seatNo)) ?? [];
    if (r === undefined) return;
    let target = null;
    switch (event.key) {
      case 'ArrowLeft':
        target = c > 0 ? this.rows[r][c - 1] : this.rows[r - 1]?.at(-1);
        break;
      case 'ArrowRight':
        target = c < this.rows[r].length - 1 ? this.rows[r][c + 1] : this.rows[r + 1]?.[0];
        break;
      case 'ArrowUp':
        if (r > 0) target = this.rows[r - 1][Math.min(c, this.rows[r - 1].length - 1)];
        break;
      case 'ArrowDown':
        if (r < this.rows.length - 1) target = this.rows[r + 1][Math.min(c, this.rows[r + 1].length - 1)];
        break;
      case 'Home':
        target = this.rows[r][0];
        break;
      case 'End':
        target = this.rows[r].at(-1);
        break;
      default:
        return;
    }
    event.preventDefault();
    if (target === undefined || target === null) return;
    this.setFocusable(target);
    this.buttons.get(target).focus();
  }
}
