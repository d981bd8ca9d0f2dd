import { h } from "../dom.js";

type Cell = Node | string;

export interface DataTableOptions {
  /** Names the table for screen readers (aria-label). */
  label: string;
  columns: readonly string[];
  rows: readonly (readonly Cell[])[];
  /** Indexes of the columns holding figures: right-aligned, tabular digits. */
  numeric?: readonly number[];
  /** Shown in place of the rows when there are none. */
  empty?: string;
}

/** A small, fully rendered table for results of a few dozen rows (not the virtual table). */
export function dataTable(options: DataTableOptions): HTMLElement {
  const numeric = new Set(options.numeric ?? []);
  const cls = (i: number) => (numeric.has(i) ? "num" : undefined);
  return h(
    "table",
    { class: "data", "aria-label": options.label },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        options.columns.map((c, i) => h("th", { scope: "col", class: cls(i) }, c)),
      ),
    ),
    h(
      "tbody",
      {},
      options.rows.length === 0
        ? h(
            "tr",
            {},
            h(
              "td",
              { colspan: options.columns.length, class: "muted" },
              options.empty ?? "Nothing.",
            ),
          )
        : options.rows.map((row) =>
            h(
              "tr",
              {},
              row.map((cell, i) => h("td", { class: cls(i) }, cell)),
            ),
          ),
    ),
  );
}
