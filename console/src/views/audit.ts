// Audit: the event log with filters (newest first, paged), and whether the
// ledger's hash chain verifies.

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { audit, describe, isAbort } from "../api";
import { h, replace } from "../dom";
import { enumName, localDate, time } from "../format";
import { EventKind, type Event } from "../gen/sessiond/v1/event_pb";
import { AuthenticationMethod } from "../gen/sessiond/v1/access_service_pb";
import { EndReason, RunState } from "../gen/sessiond/v1/session_pb";
import type { View } from "../main";

const PAGE = 100;

/** The columns of an event table. */
export const EVENT_COLUMNS = ["Revision", "Time", "Event", "Session", "User", "Acting as", "By", "Details"];

/** One event as a table row. */
export function eventRow(e: Event): HTMLTableRowElement {
  const details: string[] = [];
  if (e.moduleId) details.push(`module ${e.moduleId} (run ${e.runId})`);
  if (e.runState) details.push(enumName(RunState, e.runState, "RUN_STATE_"));
  if (e.endReason) details.push(enumName(EndReason, e.endReason, "END_REASON_"));
  if (e.scopeId) details.push(`scope ${e.scopeId}`);
  if (e.method) details.push(`${e.method} ${e.errorReason}`);
  return h(
    "tr",
    { "data-revision": String(e.revision), "data-kind": EventKind[e.kind] },
    h("td", null, String(e.revision)),
    h("td", null, time(e.time)),
    h("td", null, enumName(EventKind, e.kind, "EVENT_KIND_")),
    h("td", null, e.sessionId ? h("a", { href: `#/sessions/${e.sessionId}` }, `#${e.sessionId}`) : ""),
    h("td", null, e.user),
    h("td", null, e.effectiveUser),
    h(
      "td",
      { title: `${enumName(AuthenticationMethod, e.authenticationMethod, "AUTHENTICATION_METHOD_")} ${e.peer}` },
      e.subject,
    ),
    h("td", null, details.join(", ")),
  );
}

export const auditView: View = (root, params, caller) => {
  const abort = new AbortController();
  const signal = abort.signal;
  if (!caller.readAudit.allowed) {
    replace(root, h("h1", null, "Audit"), h("p", { class: "error", role: "alert" }, caller.readAudit.reason));
    return () => abort.abort();
  }
  const kindNames = Object.keys(EventKind)
    .filter((k) => Number.isNaN(Number(k)) && k !== "UNSPECIFIED" && k !== "SESSION_SNAPSHOT");
  const sessionParam = params.get("session") ?? "";
  const kind = params.get("kind") ?? "";
  const from = localDate(params.get("from"));
  const to = localDate(params.get("to"));
  const pageToken = params.get("page") ?? "";
  const ledger = h("p", { id: "ledger", role: "status" }, "Verifying the ledger…");
  const tbody = h("tbody");
  const pager = h("nav", { class: "pager", "aria-label": "pages" });
  const message = h("p", { id: "message", role: "status" });
  const input = (name: string, label: string, attrs: Record<string, unknown> = {}) =>
    h("label", { class: "field" }, label, h("input", { name, id: `filter-${name}`, value: params.get(name) ?? "", ...attrs }));
  const form = h(
    "form",
    {
      class: "filters",
      onsubmit: (e: SubmitEvent) => {
        e.preventDefault();
        const query = new URLSearchParams();
        for (const [k, v] of new FormData(form)) if (typeof v === "string" && v.trim()) query.set(k, v.trim());
        location.hash = `#/audit?${query}`;
      },
    },
    input("session", "Session", { size: 6, inputmode: "numeric", pattern: "[0-9]*" }),
    input("user", "User", { size: 12 }),
    input("subject", "By", { size: 12 }),
    h(
      "label",
      { class: "field" },
      "Event",
      h(
        "select",
        { name: "kind", id: "filter-kind" },
        h("option", { value: "" }, "any"),
        kindNames.map((k) => h("option", { value: k, selected: k === kind }, k.toLowerCase().replace(/_/g, " "))),
      ),
    ),
    input("from", "From", { type: "datetime-local", step: 1 }),
    input("to", "to", { type: "datetime-local", step: 1 }),
    h("button", { type: "submit" }, "Apply"),
    h("a", { href: "#/audit", class: "button" }, "Clear"),
  );
  replace(
    root,
    h("h1", null, "Audit"),
    ledger,
    form,
    message,
    h(
      "table",
      { class: "events" },
      h("thead", null, h("tr", null, EVENT_COLUMNS.map((t) => h("th", { scope: "col" }, t)))),
      tbody,
    ),
    pager,
  );

  void audit.verifyLedger({}, { signal }).then(
    (r) => {
      ledger.className = r.ok ? "ok" : "error";
      ledger.dataset.ok = String(r.ok);
      ledger.textContent = r.ok
        ? `Ledger verified up to revision ${r.headRevision} (${r.verifiedEvents} events checked).`
        : `Ledger broken at revision ${r.firstBadRevision}: ${r.problem}`;
    },
    (error: unknown) => {
      if (isAbort(error)) return;
      ledger.className = "error";
      ledger.textContent = `Ledger not verified: ${describe(error)}`;
    },
  );

  const kindValue = kind ? (EventKind as unknown as Record<string, EventKind>)[kind] : undefined;
  void audit
    .listEvents(
      {
        sessionId: /^\d+$/.test(sessionParam) ? BigInt(sessionParam) : 0n,
        user: params.get("user") ?? "",
        subject: params.get("subject") ?? "",
        kinds: kindValue ? [kindValue] : [],
        startTime: from ? timestampFromDate(from) : undefined,
        endTime: to ? timestampFromDate(to) : undefined,
        pageSize: PAGE,
        pageToken,
        newestFirst: true,
      },
      { signal },
    )
    .then(
      (r) => {
        replace(tbody, r.events.length ? r.events.map(eventRow) : h("tr", null, h("td", { colspan: 8 }, "No events match.")));
        const query = new URLSearchParams(params);
        query.delete("page");
        const first = `#/audit?${query}`;
        query.set("page", r.nextPageToken);
        replace(
          pager,
          pageToken && h("a", { href: first, class: "button" }, "⇤ Newest"),
          r.nextPageToken && h("a", { href: `#/audit?${query}`, class: "button" }, "Older →"),
          r.compactRevision ? h("span", { class: "note" }, `events up to revision ${r.compactRevision} were compacted`) : "",
        );
      },
      (error: unknown) => {
        if (isAbort(error)) return;
        message.className = "error";
        message.setAttribute("role", "alert");
        message.textContent = describe(error);
      },
    );
  return () => abort.abort();
};
