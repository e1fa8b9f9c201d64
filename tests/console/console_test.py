"""The web console in a real browser (headless Chromium driven by
Playwright), against a real sessiond that ``tests/console.rs`` started with
static tokens, an access policy and exec modules. Other clients are plain
gRPC (grpcio, the Python client's generated stubs); what the console shows
is checked in the page, what it did is checked over gRPC.

Environment (set by tests/console.rs): SESSIOND_CONSOLE_URL (the admin
listener's ``/``), SESSIOND_ENDPOINT (gRPC ``host:port``), SESSIOND_PID,
SESSIOND_POLICY (the policy file, rewritten and reloaded with SIGHUP by one
test), SESSIOND_OPERATOR_TOKEN / SESSIOND_VIEWER_TOKEN, SESSIOND_CHROMIUM,
SESSIOND_SCREENSHOTS (where each view's screenshot and figures.json go).

The tests run in file order and share one browser and one server.
"""

import json
import os
import re
import signal
import tempfile
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from sessiond.v1 import access_service_pb2 as ac_pb
from sessiond.v1 import access_service_pb2_grpc as ac_grpc
from sessiond.v1 import session_pb2 as pb
from sessiond.v1 import session_service_pb2 as ss_pb
from sessiond.v1 import session_service_pb2_grpc as ss_grpc
from sessiond.v1 import user_context_service_pb2 as uc_pb
from sessiond.v1 import user_context_service_pb2_grpc as uc_grpc
from google.protobuf import duration_pb2

CONSOLE = os.environ["SESSIOND_CONSOLE_URL"]
ENDPOINT = os.environ["SESSIOND_ENDPOINT"]
OPERATOR = os.environ["SESSIOND_OPERATOR_TOKEN"]
VIEWER = os.environ["SESSIOND_VIEWER_TOKEN"]
POLICY = Path(os.environ["SESSIOND_POLICY"])
PID = int(os.environ["SESSIOND_PID"])
CHROMIUM = os.environ["SESSIOND_CHROMIUM"]
SHOTS = Path(os.environ["SESSIOND_SCREENSHOTS"])
CALL_TIMEOUT = 10.0
# How long the page may take to show what a test waits for (generous: CI
# machines are shared; speed is measured elsewhere, not asserted here).
UI_TIMEOUT = 15_000

BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

FIGURES: dict = {}


class Grpc:
    """The gRPC clients of one caller."""

    def __init__(self, token: str):
        self.channel = grpc.insecure_channel(ENDPOINT)
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.sessions = ss_grpc.SessionServiceStub(self.channel)
        self.contexts = uc_grpc.UserContextServiceStub(self.channel)
        self.access = ac_grpc.AccessServiceStub(self.channel)

    def call(self, method, request):
        return method(request, metadata=self.metadata, timeout=CALL_TIMEOUT)

    def info(self, session_id: int) -> pb.SessionInfo:
        request = ss_pb.GetSessionInfoRequest(session_id=session_id)
        return self.call(self.sessions.GetSessionInfo, request).session


@pytest.fixture(scope="module")
def operator():
    client = Grpc(OPERATOR)
    yield client
    client.channel.close()


@pytest.fixture(scope="module")
def page():
    with tempfile.TemporaryDirectory(prefix="sessiond-chromium-") as profile:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=BROWSER_ARGS,
                color_scheme="dark",
                viewport={"width": 1280, "height": 800},
            )
            context.set_default_timeout(UI_TIMEOUT)
            page = context.pages[0] if context.pages else context.new_page()
            # Ending asks for confirmation; the tests confirm.
            page.on("dialog", lambda dialog: dialog.accept())
            yield page
            context.close()
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "figures.json").write_text(json.dumps(FIGURES, indent=2))


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, token: str, subject: str) -> None:
    page.goto(CONSOLE)
    page.fill("#token", token)
    page.keyboard.press("Enter")
    expect(page.locator("#subject")).to_have_text(subject)


def row(page: Page, session_id: int):
    return page.locator(f'tr[data-session-id="{session_id}"]')


def test_the_page_asks_for_a_token_and_loads_small_and_fast(page: Page):
    started = time.monotonic()
    page.goto(CONSOLE)
    expect(page.locator("#token")).to_be_visible()
    FIGURES["sign_in_form_visible_ms"] = round((time.monotonic() - started) * 1000)
    paint = page.evaluate(
        "() => performance.getEntriesByType('paint').map(e => [e.name, e.startTime])"
    )
    FIGURES["paint_ms"] = dict(paint)
    transferred = page.evaluate(
        "() => performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
        ".map(e => [e.name, e.transferSize, e.decodedBodySize])"
    )
    FIGURES["transferred"] = transferred
    # A wrong token is refused with the server's reason.
    page.fill("#token", "sdt_not-a-token")
    page.keyboard.press("Enter")
    expect(page.locator(".login .error")).to_contain_text("UNAUTHENTICATED")
    shot(page, "login")


def test_the_list_shows_a_session_another_client_opens(page: Page, operator: Grpc):
    sign_in(page, OPERATOR, "operator")
    expect(page.locator("#live")).to_have_text("live")
    opened = operator.call(
        operator.sessions.OpenClientlessSession,
        ss_pb.OpenClientlessSessionRequest(user="R41"),
    )
    started = operator.call(
        operator.sessions.StartSession,
        ss_pb.StartSessionRequest(user="R42", client="web/2.3 from 10.0.0.7"),
    )
    for session_id in (opened.session_id, started.session_id):
        expect(row(page, session_id)).to_be_visible()
        expect(row(page, session_id).locator(".state")).to_have_text("open")
    # Ended elsewhere: the row changes state in place.
    operator.call(operator.sessions.EndSession, ss_pb.EndSessionRequest(session_id=started.session_id))
    expect(row(page, started.session_id).locator(".state")).to_have_text("ended")
    # Filters are in the URL.
    page.select_option("#filter-state", "live")
    page.fill("#filter-user", "R41")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#/sessions\?user=R41&state=live$"))
    expect(row(page, opened.session_id)).to_be_visible()
    expect(row(page, started.session_id)).to_have_count(0)
    page.goto(CONSOLE + "#/sessions")
    expect(page.locator("#live")).to_have_text("live")
    shot(page, "sessions")


def test_the_detail_page_shows_values_failures_context_and_timeline(page: Page, operator: Grpc):
    opened = operator.call(
        operator.sessions.OpenClientlessSession,
        ss_pb.OpenClientlessSessionRequest(user="R41"),
    )
    sid = opened.session_id
    operator.call(operator.contexts.PushUserContext, uc_pb.PushUserContextRequest(session_id=sid, user="R42"))
    wait = duration_pb2.Duration(seconds=5)
    for module in ("greeting", "failing"):
        operator.call(operator.sessions.OpenModule, ss_pb.OpenModuleRequest(session_id=sid, module_id=module))
        operator.call(
            operator.sessions.GetReturnValue,
            ss_pb.GetReturnValueRequest(session_id=sid, module_id=module, timeout=wait),
        )
    page.goto(f"{CONSOLE}#/sessions/{sid}")
    expect(page.locator("#uuid")).to_have_text(opened.session_uuid)
    expect(page.locator("#user")).to_have_text("R41")
    expect(page.locator("#effective-user")).to_have_text("R42")
    expect(page.locator("#user-context")).to_contain_text("R42")
    greeting = page.locator('tr[data-module="greeting"]')
    expect(greeting.locator(".run-state")).to_have_text("succeeded")
    expect(greeting.locator(".outcome")).to_contain_text('"greeting": "hello R42"')
    failing = page.locator('tr[data-module="failing"]')
    expect(failing.locator(".run-state")).to_have_text("failed")
    expect(failing.locator(".exit-code")).to_have_text("3")
    expect(failing.locator(".stderr")).to_contain_text("disk full")
    expect(page.locator('table.events tr[data-kind="RUN_CONCLUDED"]')).to_have_count(2)
    shot(page, "detail")


def test_ending_from_the_console_ends_the_session(page: Page, operator: Grpc):
    opened = operator.call(
        operator.sessions.OpenClientlessSession,
        ss_pb.OpenClientlessSessionRequest(user="R41"),
    )
    sid = opened.session_id
    page.goto(f"{CONSOLE}#/sessions/{sid}")
    expect(page.locator("#state")).to_have_text("open")
    end = page.locator("#end-session")
    expect(end).to_be_enabled()
    end.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#state")).to_have_text("ended")
    info = operator.info(sid)
    assert info.state == pb.SESSION_STATE_ENDED
    assert info.end_reason == pb.END_REASON_CLOSED_BY_CLIENT

    # Several at once from the list.
    ids = [
        operator.call(operator.sessions.StartSession, ss_pb.StartSessionRequest(user="R43")).session_id
        for _ in range(3)
    ]
    page.goto(CONSOLE + "#/sessions?user=R43")
    for sid in ids:
        checkbox = row(page, sid).locator("input.select")
        expect(checkbox).to_be_enabled()
        checkbox.check()
    expect(page.locator("#end-selected")).to_have_text("End selected (3)")
    page.click("#end-selected")
    for sid in ids:
        expect(row(page, sid).locator(".state")).to_have_text("ended")
        assert operator.info(sid).state == pb.SESSION_STATE_ENDED


def test_the_audit_view_shows_a_verified_ledger(page: Page, operator: Grpc):
    page.goto(CONSOLE + "#/audit")
    ledger = page.locator("#ledger")
    expect(ledger).to_have_attribute("data-ok", "true")
    expect(ledger).to_contain_text("Ledger verified up to revision")
    expect(page.locator("table.events tbody tr").first).to_be_visible()
    page.select_option("#filter-kind", "SESSION_ENDED")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"#/audit\?kind=SESSION_ENDED$"))
    expect(page.locator('table.events tbody tr[data-kind="SESSION_ENDED"]').first).to_be_visible()
    expect(page.locator('table.events tbody tr:not([data-kind="SESSION_ENDED"])')).to_have_count(0)
    page.goto(CONSOLE + "#/audit")
    expect(ledger).to_have_attribute("data-ok", "true")
    shot(page, "audit")
    # The console's calls went through the same layers as gRPC's: counted,
    # and refused ones recorded with the caller's address.
    with urllib.request.urlopen(CONSOLE + "metrics", timeout=CALL_TIMEOUT) as response:
        metrics = response.read().decode()
    verified = re.search(
        r'^grpc_server_handled_total\{[^}]*grpc_method="VerifyLedger"[^}]*grpc_code="OK"[^}]*\} (\d+)',
        metrics,
        re.MULTILINE,
    )
    assert verified and int(verified.group(1)) >= 2, metrics
    page.goto(CONSOLE + "#/audit?kind=CALL_REFUSED")
    refusal = page.locator('table.events tbody tr[data-kind="CALL_REFUSED"]').first
    expect(refusal).to_contain_text("/sessiond.v1.AccessService/WhoAmI UNAUTHENTICATED")
    expect(refusal.locator('td[title*="127.0.0.1:"]')).to_have_count(1)


def test_what_the_caller_may_not_do_is_disabled_and_a_refusal_shows_the_servers_reason(
    page: Page, operator: Grpc
):
    opened = operator.call(
        operator.sessions.OpenClientlessSession,
        ss_pb.OpenClientlessSessionRequest(user="R44"),
    )
    sid = opened.session_id

    # A viewer may read but not end, nor read the audit.
    page.click("text=Sign out")
    sign_in(page, VIEWER, "viewer")
    end = row(page, sid).locator("button.end")
    expect(end).to_be_disabled()
    expect(end).to_have_attribute("title", re.compile("viewer may not"))
    expect(page.locator("nav .disabled", has_text="Audit")).to_be_visible()

    # The operator's right to end is withdrawn after the page checked it:
    # the button is still enabled, the server refuses, the page says why.
    page.click("text=Sign out")
    sign_in(page, OPERATOR, "operator")
    end = row(page, sid).locator("button.end")
    expect(end).to_be_enabled()
    # Who may open sessions for a user may end them too: both go.
    POLICY.write_text(
        '[[grant]]\nsubjects = ["operator", "viewer"]\nread_sessions = "any"\nread_audit = true\n'
    )
    os.kill(PID, signal.SIGHUP)
    check = ac_pb.CheckAccessRequest(permission=ac_pb.PERMISSION_END_SESSION, session_id=sid)
    deadline = time.monotonic() + 10
    while operator.call(operator.access.CheckAccess, check).allowed:
        assert time.monotonic() < deadline, "the policy was not reloaded"
        time.sleep(0.05)
    with pytest.raises(grpc.RpcError) as refused:
        operator.call(operator.sessions.EndSession, ss_pb.EndSessionRequest(session_id=sid))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    end.click()
    message = page.locator("#message.error")
    expect(message).to_contain_text("PERMISSION_DENIED")
    expect(message).to_contain_text(refused.value.details())
    assert operator.info(sid).state == pb.SESSION_STATE_OPEN
    shot(page, "denied")
