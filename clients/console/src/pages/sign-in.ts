import { Code, ConnectError } from "@connectrpc/connect";
import { type Api, errorMessage } from "../api.js";
import { field, h } from "../dom.js";
import { storeKey } from "../session.js";

/**
 * The first screen: paste an operator API key once. The key is tried on an operator-only
 * call before it is kept, so a wrong key or a downloader's key is refused here, clearly.
 */
export function signInScreen(options: {
  api: Api;
  message: string | undefined;
  onSignedIn(): void;
}): HTMLElement {
  const input = h("input", {
    type: "password",
    name: "api-key",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    placeholder: "gate_…",
  });
  const status = h(
    "p",
    { class: options.message === undefined ? "note" : "note error", role: "alert" },
    options.message ?? "",
  );
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "sign-in", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Gate console"),
    h(
      "p",
      {},
      "Paste an operator API key. It stays in this browser tab only (session storage) and is sent with each request as the X-API-Key header.",
    ),
    field(
      "Operator API key",
      input,
      "npm start prints where the first one is; another: npx gate keys create --name <you>",
    ),
    status,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (key === "") return;
    submit.disabled = true;
    status.className = "note";
    status.textContent = "Checking the key…";
    try {
      await options.api.tasks.getTaskStatusSummary({}, { headers: { "x-api-key": key } });
      storeKey(key);
      options.onSignedIn();
    } catch (error) {
      status.className = "note error";
      status.textContent = refusal(error);
      submit.disabled = false;
      input.select();
    }
  });
  queueMicrotask(() => input.focus());
  return h("div", { class: "sign-in-page" }, form);
}

function refusal(error: unknown): string {
  if (error instanceof ConnectError && error.code === Code.PermissionDenied) {
    return "This key is valid but it is not an operator key (it belongs to a downloader client or a device). The console needs an operator key.";
  }
  if (error instanceof ConnectError && error.code === Code.Unauthenticated) {
    return `This key was not accepted: ${error.rawMessage}`;
  }
  return errorMessage(error);
}
