"""The package's cost on the hot path: ``get_session_user`` through
``sessiond.Client`` against a bare call of the generated stub, side by side,
one call in flight.

Both go over one grpcio channel (one connection) to the same server, so
that what differs is the package's code alone. The bare call is what a user
of the generated code alone writes:
``stub.GetSessionUser(GetSessionUserRequest(session_id=…)).user``; the
package's is ``client.get_session_user(…)`` on ``Client.from_channel`` of
that channel (the id checked, the request built, a 30 s deadline sent as
``grpc-timeout``, the retry loop, the answer read; errors decoded on
failure). (Two channels, one each, measure the same difference plus
whatever separates two connections: a few per cent either way here.) The two alternate in rounds (the
order flips every round) so that drift in the machine's load falls on both;
each call is timed on its own. It prints the percentiles of both, the ratio
of the medians (the target: at most 1.1), and the ratio of each round's
medians, to show how steady it is. A third path, the package with
``timeout=None`` (no deadline sent), runs in the same rounds and shows how
much of the difference is the deadline.

Usage::

    python clients/python/bench/get_session_user.py --sessiond target/release/sessiond
    python clients/python/bench/get_session_user.py --endpoint 127.0.0.1:50051

With ``--sessiond`` it starts that binary on an ephemeral port with a
temporary database and stops it at the end; ``--server-cpus 0`` pins it to
CPU 0 (``taskset``), and ``taskset -c 1 python …`` pins this side, as the
Rust benchmark pins its server and load generator apart.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

import sessiond
from sessiond.v1 import session_service_pb2, session_service_pb2_grpc

_LISTENING = re.compile(r"sessiond listening address=(\S+)")


@contextmanager
def started(binary: Path, cpus: str | None) -> Iterator[str]:
    """A sessiond of ``binary`` on an ephemeral port (on ``cpus`` if
    given); yields its address."""
    pin = ["taskset", "-c", cpus] if cpus else []
    with tempfile.TemporaryDirectory(prefix="sessiond-bench-") as directory:
        log_path = Path(directory) / "sessiond.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    *pin,
                    str(binary),
                    "--listen",
                    "127.0.0.1:0",
                    "--database",
                    f"sqlite://{directory}/sessiond.db",
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        try:
            deadline = time.monotonic() + 30
            while True:
                match = _LISTENING.search(log_path.read_text(errors="replace"))
                if match:
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"sessiond did not start:\n{log_path.read_text()}")
                time.sleep(0.02)
            yield match.group(1)
        finally:
            process.terminate()
            process.wait(timeout=30)


def timed(call: Callable[[], object], count: int) -> list[int]:
    """Nanoseconds of each of ``count`` calls."""
    samples = []
    clock = time.perf_counter_ns
    for _ in range(count):
        start = clock()
        call()
        samples.append(clock() - start)
    return samples


def percentile(samples: list[int], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1000


def measure(endpoint: str, rounds: int, calls: int, warmup: int) -> dict[str, object]:
    channel = grpc.insecure_channel(endpoint)
    stub = session_service_pb2_grpc.SessionServiceStub(channel)
    client = sessiond.Client.from_channel(channel, token="")
    session_id = client.open_clientless_session("bench").session_id

    def bare() -> str:
        return str(stub.GetSessionUser(session_service_pb2.GetSessionUserRequest(session_id=session_id)).user)

    def package() -> str:
        return client.get_session_user(session_id)

    without_deadline = client.with_timeout(None)

    def package_no_deadline() -> str:
        return without_deadline.get_session_user(session_id)

    paths: list[tuple[str, Callable[[], str]]] = [
        ("bare", bare),
        ("package", package),
        ("package_no_deadline", package_no_deadline),
    ]
    for _, call in paths:
        assert call() == "bench"
        timed(call, warmup)
    samples: dict[str, list[int]] = {name: [] for name, _ in paths}
    round_ratios = []
    for round_number in range(rounds):
        # Each path goes first in turn.
        shift = round_number % len(paths)
        order = paths[shift:] + paths[:shift]
        medians = {}
        for name, call in order:
            taken = timed(call, calls)
            samples[name].extend(taken)
            medians[name] = statistics.median(taken)
        round_ratios.append(medians["package"] / medians["bare"])
    client.close_clientless_session(session_id)
    client.close()  # and so the channel
    result: dict[str, object] = {
        "calls_each": rounds * calls,
        "rounds": rounds,
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
    }
    for name, taken in samples.items():
        result[name] = {
            "p50_us": round(percentile(taken, 0.50), 1),
            "p90_us": round(percentile(taken, 0.90), 1),
            "p99_us": round(percentile(taken, 0.99), 1),
            "mean_us": round(statistics.fmean(taken) / 1000, 1),
        }
    result["p50_ratio"] = round(percentile(samples["package"], 0.5) / percentile(samples["bare"], 0.5), 3)
    result["p50_difference_us"] = round(percentile(samples["package"], 0.5) - percentile(samples["bare"], 0.5), 1)
    result["p50_ratio_no_deadline"] = round(
        percentile(samples["package_no_deadline"], 0.5) / percentile(samples["bare"], 0.5), 3
    )
    result["round_ratio_min"] = round(min(round_ratios), 3)
    result["round_ratio_median"] = round(statistics.median(round_ratios), 3)
    result["round_ratio_max"] = round(max(round_ratios), 3)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--endpoint", help="a running server (default: start --sessiond)")
    where.add_argument("--sessiond", type=Path, help="the sessiond binary to start")
    parser.add_argument("--server-cpus", help="pin the started server to these CPUs (taskset -c)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=400, help="calls per round and path")
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args()
    if args.endpoint is None and args.sessiond is None:
        parser.error("give --endpoint or --sessiond")
    if args.endpoint is not None:
        result = measure(args.endpoint, args.rounds, args.calls, args.warmup)
    else:
        with started(args.sessiond, args.server_cpus) as endpoint:
            result = measure(endpoint, args.rounds, args.calls, args.warmup)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"get_session_user, 1 in flight, {result['calls_each']} calls each in {result['rounds']} rounds")
    print(f"{'':20} {'p50 µs':>8} {'p90 µs':>8} {'p99 µs':>8} {'mean µs':>8}")
    for name in ("bare", "package", "package_no_deadline"):
        row = result[name]
        assert isinstance(row, dict)
        print(f"{name:20} {row['p50_us']:>8} {row['p90_us']:>8} {row['p99_us']:>8} {row['mean_us']:>8}")
    print(
        f"p50 package / bare: {result['p50_ratio']} (target <= 1.1), "
        f"{result['p50_difference_us']} µs more; per round: "
        f"min {result['round_ratio_min']}, median {result['round_ratio_median']}, max {result['round_ratio_max']}"
    )
    print(f"p50 package without a deadline / bare: {result['p50_ratio_no_deadline']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
