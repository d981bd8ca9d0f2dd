import "./style.css";
import { type Api, createApi, errorMessage, signedOutMessage } from "./api.js";
import { h, replaceChildren } from "./dom.js";
import type { Page, PageContext } from "./page.js";
import { clientsPage } from "./pages/clients.js";
import { overviewPage } from "./pages/overview.js";
import { processingPage } from "./pages/processing.js";
import { reportsPage } from "./pages/reports.js";
import { signInScreen } from "./pages/sign-in.js";
import { tasksPage } from "./pages/tasks.js";
import { telemetryPage } from "./pages/telemetry.js";
import { forgetKey, storedKey } from "./session.js";

const base = "/console/";

const routes: Record<string, { label: string; create(ctx: PageContext): Page }> = {
  "": { label: "Overview", create: overviewPage },
  tasks: { label: "Tasks", create: tasksPage },
  clients: { label: "Clients", create: clientsPage },
  processing: { label: "Processing statistics", create: processingPage },
  telemetry: { label: "Telemetry", create: telemetryPage },
  reports: { label: "Reports", create: reportsPage },
};

const root = document.getElementById("app") as HTMLElement;
let current: Page | undefined;
let paused = false;
const api: Api = createApi((message) => signOut(message));

function routeName(): string {
  const path = window.location.pathname.startsWith(base)
    ? window.location.pathname.slice(base.length)
    : "";
  const name = path.split("/", 1)[0] ?? "";
  return name in routes ? name : "";
}

function signOut(message: string): void {
  if (storedKey() === undefined) return;
  forgetKey();
  showSignIn(message);
}

function showSignIn(message?: string): void {
  current?.dispose();
  current = undefined;
  replaceChildren(root, signInScreen({ api, message, onSignedIn: () => showShell() }));
}

const toasts = h("div", { class: "toasts", role: "status", "aria-live": "polite" });

function notify(message: string, kind: "info" | "error" = "info"): void {
  const toast = h("div", { class: `toast ${kind}` }, message);
  toasts.append(toast);
  setTimeout(() => toast.remove(), kind === "error" ? 8000 : 4000);
}

const pauseButton = h("button", { type: "button", class: "pause", "aria-pressed": "false" });
const main = h("main", { id: "main", tabindex: -1 });
const nav = h("nav", { "aria-label": "Console pages" });

function showShell(): void {
  const signOutButton = h("button", { type: "button", class: "link" }, "Sign out");
  signOutButton.addEventListener("click", () => {
    forgetKey();
    showSignIn("Signed out. The key is gone from this tab.");
  });
  replaceChildren(
    root,
    h("a", { class: "skip", href: "#main" }, "Skip to content"),
    h(
      "header",
      { class: "top" },
      h("a", { class: "brand", href: base }, "Gate", h("span", {}, " console")),
      nav,
      h("div", { class: "top-actions" }, pauseButton, signOutButton),
    ),
    main,
    toasts,
  );
  render();
}

function render(): void {
  current?.dispose();
  const name = routeName();
  const route = routes[name] as (typeof routes)[string];
  replaceChildren(
    nav,
    Object.entries(routes).map(([path, r]) =>
      h(
        "a",
        { href: `${base}${path}`, "aria-current": path === name ? "page" : undefined },
        r.label,
      ),
    ),
  );
  const ctx: PageContext = {
    api,
    params: new URLSearchParams(window.location.search),
    setParams(params) {
      const query = params.toString();
      window.history.replaceState(
        null,
        "",
        `${window.location.pathname}${query ? `?${query}` : ""}`,
      );
    },
    signOut: (error) => signOut(signedOutMessage(error)),
    notify,
  };
  try {
    current = route.create(ctx);
  } catch (error) {
    current = undefined;
    replaceChildren(main, h("p", { class: "error" }, errorMessage(error)));
    return;
  }
  document.title = `${current.title} · Gate console`;
  replaceChildren(main, current.element);
  current.setPaused(paused);
}

function setPaused(value: boolean): void {
  paused = value;
  pauseButton.textContent = paused ? "▶ Resume live updates" : "❚❚ Pause live updates";
  pauseButton.setAttribute("aria-pressed", String(paused));
  current?.setPaused(paused);
}

pauseButton.addEventListener("click", () => setPaused(!paused));
setPaused(false);

// Links inside the console change the page without reloading it.
document.addEventListener("click", (event) => {
  const link = (event.target as Element | null)?.closest?.("a");
  if (
    link === null ||
    link === undefined ||
    event.defaultPrevented ||
    event.button !== 0 ||
    event.metaKey ||
    event.ctrlKey ||
    event.shiftKey ||
    link.origin !== window.location.origin ||
    !link.pathname.startsWith(base)
  )
    return;
  event.preventDefault();
  if (link.pathname + link.search !== window.location.pathname + window.location.search) {
    window.history.pushState(null, "", link.pathname + link.search);
    render();
  }
  main.focus();
});
window.addEventListener("popstate", () => {
  if (storedKey() !== undefined) render();
});

if (storedKey() === undefined) showSignIn();
else showShell();
