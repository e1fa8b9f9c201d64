// Sessions: a table filtered by user, kind, state and time range (all in
// the URL, all applied by the server), newest first, paged, kept live by
// WatchSessions, with ending (one or many) for the sessions the caller may
// end.

import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, isAbort, reasonOf, sessions } from "../api";
import { type Caller, mayEnd } from "../caller";
import { h, replace } from "../dom";
import { enumName, localDate, time } from "../format";
import { EventKind, type Event } from "../gen/sessiond/v1/event_pb";
import {
  EndReason,
  SessionKind,
  SessionState,
  type SessionInfo,
} from "../gen/sessiond/v1/session_pb";
import type { View } from "../main";

/** Sessions per page. */
const PAGE = 100;

const KINDS: [string, SessionKind][] = [
  ["interactive", SessionKind.INTERACTIVE],
  ["clientless", SessionKind.CLIENTLESS],
];
const STATES: [string, SessionState[]][] = [
  ["open", [SessionState.OPEN]],
  ["closing", [SessionState.CLOSING]],
  ["ended", [SessionState.ENDED]],
  ["live", [SessionState.OPEN, SessionState.CLOSING]],
];

interface Row {
  info: SessionInfo;
  tr: HTMLTableRowElement;
  select: HTMLInputElement;
  end: HTMLButtonElement;
}

export const sessionsView: View = (root, params, caller) => {
  const abort = new AbortController();
  const signal = abort.signal;
  const user = params.get("user") ?? "";
  const kind = KINDS.find(([name]) => name === params.get("kind"))?.[1];
  const states = STATES.find(([name]) => name === params.get("state"))?.[1] ?? [];
  const from = localDate(params.get("from"));
  const to = localDate(params.get("to"));
  const pageToken = params.get("page") ?? "";
  const rows = new Map<bigint, Row>();
  let nextPage = "";

  const message = h("p", { id: "message", role: "status", "aria-live": "polite" });
  const live = h("span", { id: "live", class: "badge" }, "connecting…");
  const newer = h("p", { id: "newer", class: "note", hidden: true });
  const tbody = h("tbody");
  const endSelected = h(
    "button",
    { type: "button", id: "end-selected", disabled: true, onclick: () => void endMany(selected()) },
    "End selected",
  );
  const pager = h("nav", { class: "pager", "aria-label": "pages" });

  const field = (name: string, label: string, control: HTMLElement) =>
    h("label", { class: "field" }, label, control);
  const select = (name: string, options: string[], current: string) =>
    h(
      "select",
      { name, id: `filter-${name}` },
      h("option", { value: "" }, "any"),
      options.map((o) => h("option", { value: o, selected: o === current }, o)),
    );
  const form = h(
    "form",
    { class: "filters", onsubmit: (e: SubmitEvent) => (e.preventDefault(), applyFilters()) },
    field("user", "User", h("input", { name: "user", id: "filter-user", value: user, size: 14 })),
    field("kind", "Kind", select("kind", KINDS.map(([n]) => n), params.get("kind") ?? "")),
    field("state", "State", select("state", STATES.map(([n]) => n), params.get("state") ?? "")),
    field("from", "Started from", h("input", { name: "from", type: "datetime-local", step: 1, value: params.get("from") ?? "" })),
    field("to", "to", h("input", { name: "to", type: "datetime-local", step: 1, value: params.get("to") ?? "" })),
    h("button", { type: "submit" }, "Apply"),
    h("a", { href: "#/sessions", class: "button" }, "Clear"),
  );

  function applyFilters(): void {
    const data = new FormData(form);
    const query = new URLSearchParams();
    for (const [k, v] of data) if (typeof v === "string" && v.trim()) query.set(k, v.trim());
    location.hash = `#/sessions?${query}`;
  }

  replace(
    root,
    h("h1", null, "Sessions ", live),
    form,
    h("div", { class: "actions" }, endSelected, message),
    newer,
    h(
      "table",
      { class: "sessions" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", { scope: "col" }, h("span", { class: "sr-only" }, "select")),
          ["Id", "User", "Acting as", "Kind", "State", "Started", "Ended / last activity", "End reason", ""].map(
            (t) => h("th", { scope: "col" }, t),
          ),
        ),
      ),
      tbody,
    ),
    pager,
  );

  function matches(info: SessionInfo): boolean {
    if (user && info.user !== user) return false;
    if (kind !== undefined && info.kind !== kind) return false;
    if (states.length && !states.includes(info.state)) return false;
    const start = info.startTime ? timestampDate(info.startTime) : undefined;
    if (from && (!start || start < from)) return false;
    if (to && (!start || start >= to)) return false;
    return true;
  }

  function render(row: Row): void {
    const s = row.info;
    const ended = s.state === SessionState.ENDED;
    const stateName = enumName(SessionState, s.state, "SESSION_STATE_");
    replace(
      row.tr,
      h("td", null, row.select),
      h("td", null, h("a", { href: `#/sessions/${s.sessionId}`, title: s.sessionUuid }, `#${s.sessionId}`)),
      h("td", null, s.user),
      h("td", null, s.effectiveUser),
      h("td", null, enumName(SessionKind, s.kind, "SESSION_KIND_")),
      h("td", { class: `state state-${stateName}` }, stateName),
      h("td", null, time(s.startTime)),
      h("td", null, ended ? time(s.endTime) : time(s.lastActivityTime)),
      h("td", null, ended ? enumName(EndReason, s.endReason, "END_REASON_") : ""),
      h("td", null, row.end),
    );
    row.tr.dataset.state = stateName;
    if (ended) {
      row.select.checked = false;
      row.select.disabled = true;
      row.end.disabled = true;
      row.end.title = "already ended";
    }
  }

  /** Adds a row: at the end (a listed page), or at the top (a new session). */
  function addRow(info: SessionInfo, atTop = false): void {
    const tr = h("tr", { "data-session-id": String(info.sessionId) });
    const select = h("input", {
      type: "checkbox",
      class: "select",
      disabled: true,
      "aria-label": `select session ${info.sessionId}`,
      onchange: updateSelection,
    });
    const end = h(
      "button",
      { type: "button", class: "end", disabled: true, onclick: () => void endMany([info.sessionId]) },
      "End",
    );
    const row: Row = { info, tr, select, end };
    rows.set(info.sessionId, row);
    render(row);
    if (atTop) tbody.insertBefore(tr, tbody.firstChild);
    else tbody.appendChild(tr);
    if (info.state === SessionState.ENDED) return;
    const check = caller.authenticates
      ? mayEnd(info.sessionId, info.user)
      : Promise.resolve({ allowed: true, reason: "" });
    void check.then((c) => {
      if (row.info.state === SessionState.ENDED) return;
      row.select.disabled = !c.allowed;
      row.end.disabled = !c.allowed;
      row.end.title = c.allowed ? `end session ${info.sessionId}` : c.reason;
      if (!c.allowed) row.end.dataset.reason = c.reason;
    });
  }

  function update(info: SessionInfo): void {
    const row = rows.get(info.sessionId);
    if (!row) return;
    row.info = info;
    render(row);
  }

  function selected(): bigint[] {
    return [...rows.values()].filter((r) => r.select.checked).map((r) => r.info.sessionId);
  }

  function updateSelection(): void {
    const n = selected().length;
    endSelected.disabled = n === 0;
    endSelected.textContent = n ? `End selected (${n})` : "End selected";
  }

  async function endMany(ids: bigint[]): Promise<void> {
    if (!ids.length) return;
    const what = ids.length === 1 ? `session #${ids[0]}` : `${ids.length} sessions`;
    if (!confirm(`End ${what}?`)) return;
    message.textContent = `Ending ${what}…`;
    message.className = "";
    message.setAttribute("role", "status");
    const refused: string[] = [];
    let ended = 0;
    for (const id of ids) {
      try {
        const r = await sessions.endSession({ sessionId: id }, { signal });
        if (r.session) update(r.session);
        ended++;
      } catch (error) {
        if (isAbort(error)) return;
        refused.push(`#${id}: ${describe(error)}`);
        const row = rows.get(id);
        if (row) row.tr.dataset.refused = reasonOf(error) ?? "error";
      }
    }
    updateSelection();
    if (refused.length) {
      message.className = "error";
      message.setAttribute("role", "alert");
      message.textContent = `Ended ${ended} of ${ids.length}. Refused: ${refused.join("; ")}`;
    } else {
      message.textContent = `Ended ${what}.`;
    }
  }

  async function load(): Promise<void> {
    let found: SessionInfo[];
    let token: string;
    try {
      const r = await sessions.listSessions(
        {
          user,
          kind,
          states,
          pageSize: PAGE,
          pageToken,
          newestFirst: true,
          startedAfter: from ? timestampFromDate(from) : undefined,
          startedBefore: to ? timestampFromDate(to) : undefined,
        },
        { signal },
      );
      found = r.sessions;
      token = r.nextPageToken;
    } catch (error) {
      if (!isAbort(error)) {
        message.className = "error";
        message.textContent = describe(error);
      }
      return;
    }
    nextPage = token;
    for (const info of found) addRow(info);
    if (!found.length) tbody.appendChild(h("tr", { class: "empty" }, h("td", { colspan: 10 }, "No sessions match.")));
    const query = new URLSearchParams(params);
    query.delete("page");
    const first = `#/sessions?${query}`;
    query.set("page", nextPage);
    replace(
      pager,
      pageToken && h("a", { href: first, class: "button" }, "⇤ First page"),
      nextPage && h("a", { href: `#/sessions?${query}`, class: "button", id: "next-page" }, "Next page →"),
      h("span", { class: "note" }, `${found.length} shown`),
    );
  }

  // Changes to sessions (several events of one change are read once).
  const stale = new Set<bigint>();
  let refreshing = false;
  let unseen = 0;
  async function refresh(): Promise<void> {
    if (refreshing) return;
    refreshing = true;
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Oldest first, so that each new row goes on top of the older ones.
    const ids = [...stale].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    stale.clear();
    refreshing = false;
    for (const id of ids) {
      try {
        const r = await sessions.getSessionInfo({ sessionId: id }, { signal });
        const info = r.session;
        if (!info) continue;
        if (rows.has(id)) update(info);
        else if (matches(info)) {
          if (pageToken) {
            unseen++;
            newer.hidden = false;
            newer.textContent = `${unseen} new session(s) on the first page.`;
          } else {
            tbody.querySelector("tr.empty")?.remove();
            addRow(info, true);
          }
        }
      } catch (error) {
        if (isAbort(error)) return;
      }
    }
  }

  function onEvent(event: Event): void {
    const opened =
      event.kind === EventKind.SESSION_STARTED || event.kind === EventKind.CLIENTLESS_SESSION_OPENED;
    if (rows.has(event.sessionId) || (opened && !rows.has(event.sessionId))) {
      stale.add(event.sessionId);
      void refresh();
    }
  }

  /**
   * Squares the table with the watch's initial state (the open sessions as
   * of its revision), so that nothing that changed between the listing and
   * the watch's start is missed: shown rows whose state differs are read
   * again, and newer open sessions are added on the first page.
   */
  function reconcile(snapshot: Map<bigint, SessionInfo>): void {
    const shown = [...rows.keys()];
    const last = shown.length ? shown.reduce((a, b) => (a > b ? a : b)) : 0n;
    for (const row of rows.values()) {
      const now = snapshot.get(row.info.sessionId);
      if (row.info.state !== SessionState.ENDED && now?.state !== row.info.state) stale.add(row.info.sessionId);
    }
    for (const [id, info] of snapshot) {
      if (!rows.has(id) && id > last && !pageToken && matches(info)) stale.add(id);
    }
    if (stale.size) void refresh();
  }

  async function watch(): Promise<void> {
    let after = 0n;
    let snapshot = new Map<bigint, SessionInfo>();
    while (!signal.aborted) {
      try {
        const request = after ? { afterRevision: after, user } : { sendInitialState: true, user };
        for await (const m of sessions.watchSessions(request, { signal })) {
          switch (m.message.case) {
            case "initialStateEnd":
              after = m.message.value.revision;
              await listed;
              reconcile(snapshot);
              snapshot = new Map();
              live.textContent = "live";
              live.className = "badge live";
              break;
            case "progress":
              after = m.message.value.revision;
              break;
            case "event": {
              const event = m.message.value;
              if (event.kind === EventKind.SESSION_SNAPSHOT) {
                if (event.session) snapshot.set(event.sessionId, event.session);
                break;
              }
              after = event.revision;
              onEvent(event);
              break;
            }
          }
        }
      } catch (error) {
        if (signal.aborted || isAbort(error)) return;
        if (reasonOf(error) === "REVISION_COMPACTED") after = 0n;
        snapshot = new Map();
        live.textContent = "reconnecting";
        live.className = "badge";
        live.title = describe(error);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  // The table is listed at once; the watch, started together, squares it
  // with its initial state and then keeps it current.
  const listed = load();
  void watch();
  return () => abort.abort();
};
