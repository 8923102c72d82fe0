"""What a 50 MiB request body costs a real ``sieve-verifier serve``, without a key and with one.

The key is checked before the body is read, so a client without one should cost the server
nothing; a client with one pays for buffering and parsing (up to ``SIEVE_MAX_BODY_BYTES``). The
server's resident memory is sampled every 10 ms while each request is in flight.

    python benchmarks/auth_memory_bench.py [--mib 50]
"""

from __future__ import annotations

import argparse
import threading
import time

import httpx
import psutil

from verifier_service.launcher import serve_process

KEY = "bench-key-0123456789abcdef"


def measure(url: str, server: psutil.Process, mib: int, headers: dict[str, str]) -> dict:
    body = b'{"proofs": [], "pad": "' + b"x" * ((mib << 20) - 40) + b'"}'
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, server.memory_info().rss)
            time.sleep(0.01)

    before = server.memory_info().rss
    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    status: int | str  # the HTTP status, or the exception's name when the upload was cut off
    try:
        with httpx.Client(timeout=120) as client:
            response = client.post(
                url + "/verify",
                content=body,
                headers={"content-type": "application/json", **headers},
            )
        status = response.status_code
    except httpx.HTTPError as exc:  # the server may close the connection on a refused upload
        status = type(exc).__name__
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    after = server.memory_info().rss
    return {
        "status": status,
        "seconds": round(elapsed, 3),
        "rss_before_mib": round(before / 2**20, 1),
        "rss_peak_mib": round(peak / 2**20, 1),
        "rss_after_mib": round(after / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=50)
    args = parser.parse_args()
    env = {"SIEVE_CHECKERS": "math", "SIEVE_API_KEYS": KEY, "SIEVE_LOG_LEVEL": "warning"}
    with serve_process(env, ready_path="/health") as served:
        url, server = served.url, psutil.Process(served.process.pid)
        time.sleep(1.0)  # let start-up allocations settle
        for name, headers in (
            ("no key", {}),
            ("wrong key", {"Authorization": "Bearer wrong"}),
            ("valid key", {"Authorization": f"Bearer {KEY}"}),
        ):
            figures = measure(url, server, args.mib, headers)
            grown = figures["rss_peak_mib"] - figures["rss_before_mib"]
            print(f"{args.mib} MiB body, {name:9}: {figures}  peak growth {grown:+.1f} MiB")


if __name__ == "__main__":
    main()
