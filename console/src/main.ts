// The sessiond console: routes (in the URL's hash, so that every view and
// its filters can be bookmarked), the header, and sign-in.

import { Code, ConnectError } from "@connectrpc/connect";
import { describe, setToken, token } from "./api";
import { type Caller, loadCaller } from "./caller";
import { h, replace } from "./dom";
import { auditView } from "./views/audit";
import { detailView } from "./views/detail";
import { loginView } from "./views/login";
import { sessionsView } from "./views/sessions";

/** A view: renders into `root`, returns what stops it (watches, timers). */
export type View = (root: HTMLElement, params: URLSearchParams, caller: Caller) => () => void;

const header = document.getElementById("header")!;
const main = document.getElementById("main")!;
let stop: (() => void) | undefined;
let caller: Caller | undefined;

/** The route of the URL's hash: its path and query. */
function route(): { path: string; params: URLSearchParams } {
  const hash = location.hash.replace(/^#/, "") || "/sessions";
  const [path = "/sessions", query = ""] = hash.split("?", 2);
  return { path, params: new URLSearchParams(query) };
}

function renderHeader(): void {
  const { path } = route();
  const link = (href: string, text: string, current: boolean, disabledReason?: string) =>
    disabledReason
      ? h("span", { class: "nav disabled", "aria-disabled": "true", title: disabledReason }, text)
      : h("a", { class: "nav", href, "aria-current": current ? "page" : false }, text);
  replace(
    header,
    h("strong", { class: "brand" }, "sessiond"),
    h(
      "nav",
      { "aria-label": "views" },
      link("#/sessions", "Sessions", path.startsWith("/sessions")),
      caller &&
        link(
          "#/audit",
          "Audit",
          path.startsWith("/audit"),
          caller.readAudit.allowed ? undefined : caller.readAudit.reason,
        ),
    ),
    caller &&
      h(
        "span",
        { class: "who" },
        "signed in as ",
        h("strong", { id: "subject" }, caller.who.subject),
        caller.authenticates &&
          h("button", { type: "button", onclick: signOut, class: "link" }, "Sign out"),
      ),
  );
}

function signOut(): void {
  setToken(null);
  caller = undefined;
  void start();
}

function render(): void {
  stop?.();
  stop = undefined;
  renderHeader();
  if (!caller) return;
  const { path, params } = route();
  const detail = /^\/sessions\/(\d+)$/.exec(path);
  let view: View = sessionsView;
  if (detail) {
    params.set("id", detail[1]!);
    view = detailView;
  } else if (path.startsWith("/audit")) {
    view = auditView;
  }
  main.focus({ preventScroll: true });
  stop = view(main, params, caller);
}

/** Finds out who the caller is, asking for a token when the server wants one. */
async function start(): Promise<void> {
  try {
    caller = await loadCaller();
    render();
  } catch (error) {
    const e = ConnectError.from(error);
    if (e.code === Code.Unauthenticated) {
      renderHeader();
      const problem = token() ? describe(e) : undefined;
      setToken(null);
      loginView(main, problem, (value) => {
        setToken(value);
        void start();
      });
    } else {
      replace(main, h("p", { class: "error", role: "alert" }, describe(e)));
    }
  }
}

// The skip link moves the focus; it must not change the route (the hash).
document.querySelector(".skip")?.addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", render);
void start();
