"""Measures the web console against a local sessiond: first paint, the time
until the sessions table shows a full page with N open sessions, paging,
and how soon a session opened over gRPC appears in the live table. Not a
test (nothing is asserted): the figures go to BENCHMARKS.md.

Usage (from the repository root, with the Python of .ci/run's .venv and
Debian's chromium)::

    PYTHONPATH=clients/python/src python tests/console/measure.py \\
        --binary target/release/sessiond --sessions 1000

It starts the binary on free ports with a temporary database and no
authentication, opens the sessions (StartSession, 8 at a time), then loads
the console in headless Chromium three times and reports the medians.
"""

import argparse
import json
import socket
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from playwright.sync_api import sync_playwright

from sessiond.v1 import session_service_pb2 as ss_pb
from sessiond.v1 import session_service_pb2_grpc as ss_grpc

ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    figures: dict = {"sessions": options.sessions}
    with tempfile.TemporaryDirectory() as dir:
        grpc_port, admin_port = free_port(), free_port()
        server = subprocess.Popen(
            [options.binary, "--listen", f"127.0.0.1:{grpc_port}", "--admin-listen",
             f"127.0.0.1:{admin_port}", "--database", f"sqlite://{dir}/sessiond.db"],
            stderr=subprocess.DEVNULL,
        )
        try:
            channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
            grpc.channel_ready_future(channel).result(timeout=30)
            sessions = ss_grpc.SessionServiceStub(channel)
            started = time.monotonic()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(
                    lambda i: sessions.StartSession(ss_pb.StartSessionRequest(user=f"U{i % 50}")),
                    range(options.sessions),
                ))
            figures["opening_s"] = round(time.monotonic() - started, 2)
            console = f"http://127.0.0.1:{admin_port}/"
            runs = []
            with sync_playwright() as playwright:
                for _ in range(options.runs):
                    with tempfile.TemporaryDirectory() as profile:
                        context = playwright.chromium.launch_persistent_context(
                            profile, executable_path=options.chromium, headless=True, args=ARGS,
                            bypass_csp=True,  # wait_for_function evaluates strings
                        )
                        page = context.pages[0] if context.pages else context.new_page()
                        page.goto(console)
                        page.wait_for_function(
                            "document.querySelectorAll('tr[data-session-id]').length === 100",
                            timeout=60_000,
                        )
                        run = {"table_ms": page.evaluate("performance.now()")}
                        paints = dict(page.evaluate(
                            "performance.getEntriesByType('paint').map(e => [e.name, e.startTime])"
                        ))
                        run["first_contentful_paint_ms"] = paints.get("first-contentful-paint")
                        run["transferred_bytes"] = page.evaluate(
                            "performance.getEntriesByType('resource')"
                            ".filter(e => /\\.(js|css)$/.test(e.name))"
                            ".reduce((n, e) => n + e.transferSize, 0)"
                        )
                        # Paging: the next page's table.
                        first = page.locator("tr[data-session-id]").first.get_attribute("data-session-id")
                        t0 = page.evaluate("performance.now()")
                        page.click("#next-page")
                        page.wait_for_function(
                            f"(() => {{ const r = document.querySelector('tr[data-session-id]');"
                            f" return r && r.dataset.sessionId !== '{first}'"
                            f" && document.querySelectorAll('tr[data-session-id]').length === 100; }})()",
                            timeout=60_000,
                        )
                        run["next_page_ms"] = page.evaluate("performance.now()") - t0
                        # Live: a session opened on the last page's view.
                        page.goto(console + "#/sessions?user=U7")
                        page.wait_for_selector("#live.live", timeout=60_000)
                        t0 = time.monotonic()
                        opened = sessions.StartSession(ss_pb.StartSessionRequest(user="U7"))
                        page.wait_for_selector(
                            f'tr[data-session-id="{opened.session_id}"]', timeout=60_000
                        )
                        run["live_row_ms"] = (time.monotonic() - t0) * 1000
                        runs.append(run)
                        context.close()
            for key in runs[0]:
                figures[key] = round(statistics.median(r[key] for r in runs), 1)
            figures["runs"] = runs
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
