import { field, h } from "../dom.js";
import { apiTime } from "../format.js";

/** An optional UTC period, two datetime-local fields, as the reports API takes it. */
export function periodFields(from: string, to: string) {
  const fromInput = h("input", { type: "datetime-local", name: "from", step: 1, value: from });
  const toInput = h("input", { type: "datetime-local", name: "to", step: 1, value: to });
  return {
    fromInput,
    toInput,
    from: field("From (UTC)", fromInput),
    to: field("To (UTC)", toInput),
    /** The lower bound as API text; empty for none. */
    start: () => apiTime(fromInput.value),
    /** The upper bound as API text; empty for none. */
    end: () => apiTime(toInput.value),
  };
}
