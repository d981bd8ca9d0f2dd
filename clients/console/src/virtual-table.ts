import { append, h } from "./dom.js";

export interface Column<T> {
  label: string;
  /** A CSS grid track, e.g. "8rem" or "minmax(10rem, 1fr)". */
  width: string;
  cell(row: T): Node | string;
  /** Extra class on the cell (alignment, monospace). */
  className?: string;
}

export interface VirtualTableOptions<T> {
  /** The accessible name of the grid. */
  label: string;
  columns: readonly Column<T>[];
  key(row: T): string;
  /** Enter on the active row, or a press and release on one row. */
  onOpen(row: T): void;
  /** Said when there are no rows. */
  empty: string;
  rowHeight?: number;
}

const overscan = 8;

/**
 * A table that renders only the rows in view (plus a few), so 10,000 rows scroll as
 * smoothly as 10. Keyboard: the body takes focus; arrows, Page Up/Down, Home and End move
 * the active row (announced through aria-activedescendant); Enter opens it.
 */
export class VirtualTable<T> {
  readonly element: HTMLElement;
  readonly #options: VirtualTableOptions<T>;
  readonly #body: HTMLElement;
  readonly #spacer: HTMLElement;
  readonly #emptyNote: HTMLElement;
  readonly #rowHeight: number;
  readonly #template: string;
  #rows: readonly T[] = [];
  #active = -1;
  #activeKey: string | undefined;
  #selectedKey: string | undefined;
  #frame = 0;
  /** The row under the last primary-button press, by key: a click opens it on release. */
  #pressedKey: string | undefined;
  readonly #id = `vt-${Math.random().toString(36).slice(2, 8)}`;

  constructor(options: VirtualTableOptions<T>) {
    this.#options = options;
    this.#rowHeight = options.rowHeight ?? 34;
    this.#template = options.columns.map((c) => c.width).join(" ");
    const header = h(
      "div",
      { class: "vt-row vt-head", role: "row", style: `grid-template-columns:${this.#template}` },
      // Headers take the cells' alignment (numbers right), not their font.
      options.columns.map((c) =>
        h(
          "div",
          { role: "columnheader", class: c.className?.includes("num") ? "num" : undefined },
          c.label,
        ),
      ),
    );
    this.#spacer = h("div", { class: "vt-spacer", role: "presentation" });
    this.#emptyNote = h("p", { class: "vt-empty" }, options.empty);
    this.#body = h(
      "div",
      { class: "vt-body", tabindex: 0, role: "rowgroup", "aria-label": `${options.label} rows` },
      this.#spacer,
    );
    this.element = h(
      "div",
      { class: "vt", role: "grid", "aria-label": options.label, "aria-rowcount": 0 },
      header,
      this.#body,
      this.#emptyNote,
    );
    this.#body.addEventListener("scroll", () => this.#schedule());
    this.#body.addEventListener("keydown", (event) => this.#onKey(event));
    // Rows are redrawn whenever their data changes (a poll, a stream), which can replace the
    // row element between a press and its release; the browser then sends the click to the
    // table body, not the row. A press and a release on the same row's key open it instead.
    this.#body.addEventListener("mousedown", (event) => {
      this.#pressedKey = event.button === 0 ? rowKeyAt(event) : undefined;
    });
    this.#body.addEventListener("mouseup", (event) => {
      const key = this.#pressedKey;
      this.#pressedKey = undefined;
      if (event.button !== 0 || key === undefined || rowKeyAt(event) !== key) return;
      const index = this.#rows.findIndex((r) => this.#options.key(r) === key);
      if (index < 0) return;
      this.#setActive(index);
      this.#options.onOpen(this.#rows[index] as T);
    });
    this.#body.addEventListener("focus", () => {
      if (this.#active < 0 && this.#rows.length > 0) this.#setActive(0);
    });
    new ResizeObserver(() => this.#schedule()).observe(this.#body);
  }

  /** Replaces the rows; the active row follows its key when it is still there. */
  setRows(rows: readonly T[]): void {
    this.#rows = rows;
    if (this.#activeKey !== undefined) {
      this.#active = rows.findIndex((r) => this.#options.key(r) === this.#activeKey);
    }
    if (this.#active >= rows.length) this.#active = rows.length - 1;
    this.element.setAttribute("aria-rowcount", String(rows.length + 1));
    this.#emptyNote.hidden = rows.length > 0;
    this.#spacer.style.height = `${rows.length * this.#rowHeight}px`;
    this.#schedule();
  }

  /** Marks the row shown in a detail panel. */
  setSelected(key: string | undefined): void {
    this.#selectedKey = key;
    this.#schedule();
  }

  get rowCount(): number {
    return this.#rows.length;
  }

  #schedule(): void {
    if (this.#frame !== 0) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.#render();
    });
  }

  #render(): void {
    const height = this.#body.clientHeight || 400;
    const first = Math.max(0, Math.floor(this.#body.scrollTop / this.#rowHeight) - overscan);
    const last = Math.min(
      this.#rows.length,
      Math.ceil((this.#body.scrollTop + height) / this.#rowHeight) + overscan,
    );
    const fragment = document.createDocumentFragment();
    for (let index = first; index < last; index++) {
      const row = this.#rows[index] as T;
      const key = this.#options.key(row);
      const element = h("div", {
        class: `vt-row${index === this.#active ? " active" : ""}${key === this.#selectedKey ? " selected" : ""}`,
        role: "row",
        id: `${this.#id}-${index}`,
        "aria-rowindex": index + 2,
        "aria-selected": key === this.#selectedKey ? "true" : "false",
        "data-key": key,
        style: `grid-template-columns:${this.#template};transform:translateY(${index * this.#rowHeight}px);height:${this.#rowHeight}px`,
      });
      for (const column of this.#options.columns) {
        const cell = h("div", { role: "gridcell", class: column.className });
        append(cell, [column.cell(row)]);
        element.append(cell);
      }
      fragment.append(element);
    }
    this.#spacer.replaceChildren(fragment);
    if (this.#active >= 0)
      this.#body.setAttribute("aria-activedescendant", `${this.#id}-${this.#active}`);
    else this.#body.removeAttribute("aria-activedescendant");
  }

  #setActive(index: number): void {
    if (this.#rows.length === 0) return;
    this.#active = Math.max(0, Math.min(this.#rows.length - 1, index));
    this.#activeKey = this.#options.key(this.#rows[this.#active] as T);
    const top = this.#active * this.#rowHeight;
    const bottom = top + this.#rowHeight;
    if (top < this.#body.scrollTop) this.#body.scrollTop = top;
    else if (bottom > this.#body.scrollTop + this.#body.clientHeight)
      this.#body.scrollTop = bottom - this.#body.clientHeight;
    // Announced at once; the row itself is drawn on the next frame.
    this.#body.setAttribute("aria-activedescendant", `${this.#id}-${this.#active}`);
    this.#schedule();
  }

  #onKey(event: KeyboardEvent): void {
    const page = Math.max(1, Math.floor(this.#body.clientHeight / this.#rowHeight) - 1);
    const moves: Record<string, number> = {
      ArrowDown: this.#active + 1,
      ArrowUp: this.#active - 1,
      PageDown: this.#active + page,
      PageUp: this.#active - page,
      Home: 0,
      End: this.#rows.length - 1,
    };
    const target = moves[event.key];
    if (target !== undefined) {
      event.preventDefault();
      this.#setActive(target);
    } else if (event.key === "Enter" && this.#active >= 0) {
      event.preventDefault();
      this.#options.onOpen(this.#rows[this.#active] as T);
    }
  }
}

/** The key of the row an event happened in, if any. */
function rowKeyAt(event: MouseEvent): string | undefined {
  const target = event.target instanceof Element ? event.target : null;
  return target?.closest<HTMLElement>(".vt-row[data-key]")?.dataset.key;
}
