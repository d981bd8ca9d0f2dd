import { errorMessage } from "./api.js";
import { h } from "./dom.js";

/**
 * A modal form in a native <dialog>: focus moves into it, Escape closes it, and the page
 * behind is inert. `submit` runs on the primary button; its error is shown in the dialog
 * as the server's message, and the dialog stays open.
 */
export function formDialog(options: {
  title: string;
  body: (Node | string)[];
  submitLabel: string;
  submit(): Promise<string | undefined>;
  /** Extra buttons left of the primary one (e.g. "Count tasks"). */
  extraActions?: HTMLButtonElement[];
}): { dialog: HTMLDialogElement; status: HTMLElement } {
  const status = h("p", { class: "note", role: "status", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "primary" }, options.submitLabel);
  const cancel = h("button", { type: "button" }, "Close");
  const form = h(
    "form",
    { method: "dialog" },
    h("h2", { class: "dialog-title" }, options.title),
    ...options.body,
    status,
    h("div", { class: "dialog-actions" }, cancel, ...(options.extraActions ?? []), submit),
  );
  const dialog = h("dialog", { "aria-label": options.title }, form);
  cancel.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    status.className = "note";
    status.textContent = "Working…";
    try {
      const done = await options.submit();
      if (done === undefined) dialog.close();
      else status.textContent = done;
    } catch (error) {
      status.className = "note error";
      status.textContent = errorMessage(error);
    } finally {
      submit.disabled = false;
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, status };
}

/** Asks before a consequential action; resolves true when confirmed. */
export function confirmDialog(
  title: string,
  message: string,
  confirmLabel: string,
): Promise<boolean> {
  return new Promise((resolve) => {
    const yes = h("button", { type: "button", class: "primary" }, confirmLabel);
    const no = h("button", { type: "button" }, "Go back");
    const dialog = h(
      "dialog",
      { "aria-label": title, role: "alertdialog" },
      h("h2", { class: "dialog-title" }, title),
      h("p", { class: "confirm-message" }, message),
      h("div", { class: "dialog-actions" }, no, yes),
    );
    let answer = false;
    yes.addEventListener("click", () => {
      answer = true;
      dialog.close();
    });
    no.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}
