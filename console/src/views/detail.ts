// Session detail: the record, the user-context stack, the module runs with
// their values or failures, and the session's event timeline; kept live
// by a WatchSessions of this one session.

import { audit, describe, isAbort, reasonOf, sessions } from "../api";
import { type Caller, mayEnd } from "../caller";
import { type Child, h, replace } from "../dom";
import { enumName, json, time } from "../format";
import { EventKind, type Event } from "../gen/sessiond/v1/event_pb";
import {
  EndReason,
  ModuleFailureKind,
  RunState,
  SessionKind,
  SessionState,
  type SessionInfo,
} from "../gen/sessiond/v1/session_pb";
import type { GetReturnValueResponse } from "../gen/sessiond/v1/session_service_pb";
import type { View } from "../main";
import { eventRow, EVENT_COLUMNS } from "./audit";

/** One module run, as the timeline and GetReturnValue tell it. */
interface Run {
  runId: bigint;
  moduleId: string;
  actingUser: string;
  started?: Event;
  concluded?: Event;
  /** The outcome read with GetReturnValue (the module's latest run only). */
  outcome?: GetReturnValueResponse;
  /** Why the outcome could not be read. */
  problem?: string;
}

export const detailView: View = (root, params, caller) => {
  const abort = new AbortController();
  const signal = abort.signal;
  const sessionId = BigInt(params.get("id") ?? "0");
  const message = h("p", { id: "message", role: "status", "aria-live": "polite" });
  let reloading = false;

  async function read(): Promise<void> {
    let info: SessionInfo | undefined;
    try {
      info = (await sessions.getSessionInfo({ sessionId }, { signal })).session;
    } catch (error) {
      if (!isAbort(error)) replace(root, backLink(), h("p", { class: "error", role: "alert" }, describe(error)));
      return;
    }
    if (!info) return;
    const events: Event[] = [];
    let timelineProblem: string | undefined;
    if (caller.readAudit.allowed) {
      try {
        let pageToken = "";
        do {
          const r = await audit.listEvents({ sessionId, pageSize: 1000, pageToken }, { signal });
          events.push(...r.events);
          pageToken = r.nextPageToken;
        } while (pageToken);
      } catch (error) {
        if (isAbort(error)) return;
        timelineProblem = describe(error);
      }
    } else {
      timelineProblem = `The timeline and the runs need the read_audit permission: ${caller.readAudit.reason}`;
    }
    const runs = runsOf(events);
    const latest = new Map<string, Run>();
    for (const run of runs) latest.set(run.moduleId, run);
    await Promise.all(
      [...latest.values()].map(async (run) => {
        try {
          run.outcome = await sessions.getReturnValue({ sessionId, moduleId: run.moduleId }, { signal });
        } catch (error) {
          run.problem = reasonOf(error) === "MODULE_STILL_RUNNING" ? "still running" : describe(error);
        }
      }),
    );
    if (signal.aborted) return;
    render(info, events, runs, timelineProblem);
  }

  function render(info: SessionInfo, events: Event[], runs: Run[], timelineProblem?: string): void {
    const ended = info.state === SessionState.ENDED;
    const end = h(
      "button",
      { type: "button", id: "end-session", class: "end", disabled: true, onclick: () => void endSession() },
      "End session",
    );
    if (!ended) {
      const check = caller.authenticates
        ? mayEnd(info.sessionId, info.user)
        : Promise.resolve({ allowed: true, reason: "" });
      void check.then((c) => {
        end.disabled = !c.allowed;
        end.title = c.allowed ? "" : c.reason;
      });
    }
    const state = enumName(SessionState, info.state, "SESSION_STATE_");
    const row = (label: string, value: Child, id?: string) => [h("dt", null, label), h("dd", { id }, value)];
    replace(
      root,
      backLink(),
      h("h1", null, `Session #${info.sessionId} `, h("span", { class: `badge state-${state}`, id: "state" }, state)),
      h("div", { class: "actions" }, end, message),
      h(
        "dl",
        { class: "record" },
        row("User", info.user, "user"),
        row("Acting as (effective user)", info.effectiveUser, "effective-user"),
        row("UUID", h("code", null, info.sessionUuid), "uuid"),
        row("Kind", enumName(SessionKind, info.kind, "SESSION_KIND_")),
        row("Started", time(info.startTime)),
        row("Last activity", time(info.lastActivityTime)),
        row("Ended", time(info.endTime)),
        row("End reason", ended ? enumName(EndReason, info.endReason, "END_REASON_") : "—", "end-reason"),
        row("Client", info.client || "—"),
        row("Owner node", info.ownerNode || "—"),
      ),
      h("h2", null, "User context"),
      contextStack(info, events),
      h("h2", null, "Module runs"),
      runs.length
        ? h(
            "table",
            { class: "runs" },
            h("thead", null, h("tr", null, ["Run", "Module", "Acting as", "Started", "Concluded", "State", "Outcome"].map((t) => h("th", { scope: "col" }, t)))),
            h("tbody", null, runs.map(runRow)),
          )
        : h("p", { class: "note" }, timelineProblem ? "—" : "No module has run in this session."),
      h("h2", null, "Timeline"),
      timelineProblem
        ? h("p", { class: "note", id: "timeline-problem" }, timelineProblem)
        : h(
            "table",
            { class: "events" },
            h("thead", null, h("tr", null, EVENT_COLUMNS.map((t) => h("th", { scope: "col" }, t)))),
            h("tbody", null, events.map(eventRow)),
          ),
    );
  }

  async function endSession(): Promise<void> {
    if (!confirm(`End session #${sessionId}?`)) return;
    try {
      await sessions.endSession({ sessionId }, { signal });
      message.textContent = `Session #${sessionId} ended.`;
      void reload();
    } catch (error) {
      if (isAbort(error)) return;
      message.className = "error";
      message.setAttribute("role", "alert");
      message.textContent = describe(error);
    }
  }

  async function reload(): Promise<void> {
    if (reloading) return;
    reloading = true;
    await new Promise((resolve) => setTimeout(resolve, 50));
    reloading = false;
    const kept = message.textContent;
    const keptClass = message.className;
    await read();
    message.textContent = kept;
    message.className = keptClass;
  }

  async function watch(): Promise<void> {
    let after = 0n;
    while (!signal.aborted) {
      try {
        const request = after ? { afterRevision: after, sessionId } : { sendInitialState: true, sessionId };
        for await (const m of sessions.watchSessions(request, { signal })) {
          if (m.message.case === "initialStateEnd") {
            after = m.message.value.revision;
            await read();
          } else if (m.message.case === "progress") {
            after = m.message.value.revision;
          } else if (m.message.case === "event" && m.message.value.kind !== EventKind.SESSION_SNAPSHOT) {
            after = m.message.value.revision;
            void reload();
          }
        }
      } catch (error) {
        if (signal.aborted || isAbort(error)) return;
        if (reasonOf(error) === "REVISION_COMPACTED") after = 0n;
        if (!after) await read();
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  replace(root, backLink(), h("p", { class: "note" }, "Loading…"));
  void watch();
  return () => abort.abort();
};

function backLink(): HTMLElement {
  return h("p", null, h("a", { href: "#/sessions" }, "← Sessions"));
}

/** The runs the timeline names, oldest first. */
function runsOf(events: Event[]): Run[] {
  const runs = new Map<bigint, Run>();
  for (const event of events) {
    if (event.kind !== EventKind.RUN_STARTED && event.kind !== EventKind.RUN_CONCLUDED) continue;
    let run = runs.get(event.runId);
    if (!run) {
      run = { runId: event.runId, moduleId: event.moduleId, actingUser: event.effectiveUser };
      runs.set(event.runId, run);
    }
    if (event.kind === EventKind.RUN_STARTED) run.started = event;
    else run.concluded = event;
  }
  return [...runs.values()];
}

function runRow(run: Run): HTMLTableRowElement {
  const outcome = run.outcome && run.outcome.runId === run.runId ? run.outcome : undefined;
  const state = outcome
    ? outcome.state
    : (run.concluded?.runState ?? (run.started ? RunState.RUNNING : RunState.UNSPECIFIED));
  const stateName = enumName(RunState, state, "RUN_STATE_");
  let detail: Child = "";
  if (outcome?.state === RunState.SUCCEEDED) {
    detail = h("pre", { class: "value" }, json(outcome.value));
  } else if (outcome?.failure) {
    const f = outcome.failure;
    detail = h(
      "div",
      { class: "failure" },
      h("p", null, enumName(ModuleFailureKind, f.kind, "MODULE_FAILURE_KIND_"), ": ", f.message),
      f.exitCode !== undefined && h("p", null, "exit code ", h("code", { class: "exit-code" }, f.exitCode)),
      f.signal !== undefined && h("p", null, "signal ", h("code", null, f.signal)),
      f.stderrTail && h("pre", { class: "stderr" }, f.stderrTail),
    );
  } else if (run.concluded?.failureKind) {
    detail = enumName(ModuleFailureKind, run.concluded.failureKind, "MODULE_FAILURE_KIND_");
  } else if (!outcome && run.problem && !run.concluded) {
    detail = run.problem;
  } else if (!outcome && run.concluded) {
    detail = h("span", { class: "note" }, "an earlier run: its value is not kept");
  }
  return h(
    "tr",
    { "data-run-id": String(run.runId), "data-module": run.moduleId },
    h("td", null, String(run.runId)),
    h("td", null, run.moduleId),
    h("td", null, run.actingUser),
    h("td", null, time(run.started?.time ?? outcome?.startTime)),
    h("td", null, time(run.concluded?.time ?? outcome?.endTime)),
    h("td", { class: `run-state run-${stateName}` }, stateName),
    h("td", { class: "outcome" }, detail),
  );
}

/** The user-context stack: the session's user, then each open scope. */
function contextStack(info: SessionInfo, events: Event[]): HTMLElement {
  const scopes: { scopeId: bigint; user: string }[] = [];
  let base = info.user;
  for (const event of events) {
    if (event.kind === EventKind.USER_CONTEXT_PUSHED) scopes.push({ scopeId: event.scopeId, user: event.effectiveUser });
    else if (event.kind === EventKind.USER_CONTEXT_POPPED) scopes.pop();
    else if (event.kind === EventKind.USER_CONTEXT_SET) {
      const top = scopes[scopes.length - 1];
      if (top) top.user = event.effectiveUser;
      else base = event.effectiveUser;
    }
  }
  const known = scopes.length === info.userContextDepth;
  return h(
    "div",
    { id: "user-context" },
    h(
      "ol",
      { class: "stack" },
      h("li", null, "session: ", h("strong", null, known ? base : info.user)),
      known
        ? scopes.map((s) => h("li", null, `scope ${s.scopeId}: `, h("strong", null, s.user)))
        : h("li", null, `${info.userContextDepth} scope(s) pushed`),
    ),
    h("p", null, "Now acting as ", h("strong", null, info.effectiveUser), ` (${info.userContextDepth} scope(s) open).`),
  );
}

