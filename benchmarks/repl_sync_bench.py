"""What reply integrity costs a proof: leases through the pool, with and without the closing sync.

Runs ``--leases`` leases of one proof command each on one worker of the REPL protocol double (no
delay, so the figure is the round trip itself, not Lean), first with the pool's closing
:meth:`~verifier_service.lean.repl.LeanWorker.sync` and then with it skipped, and prints the
time per lease of each and their difference. The framing, env-number and quiet checks run in
both.

    python benchmarks/repl_sync_bench.py [--leases 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from verifier_service.lean.pool import ReplPool
from verifier_service.testing import repl_double

HEADER = "import Mathlib"
PROOF = "theorem two : 1 + 1 = 2 := by norm_num"


async def per_lease(leases: int, *, sync: bool) -> float:
    """Seconds per lease, over ``leases`` leases on one warm worker."""
    pool = ReplPool(repl_double.command("--no-transcripts"), workers=1, max_proofs_per_worker=10**9)
    await pool.start([HEADER])
    try:
        async with pool.lease(HEADER, acquire_timeout_s=60):  # warm, and the first sync paid
            pass
        started = time.perf_counter()
        for _ in range(leases):
            async with pool.lease(HEADER, acquire_timeout_s=60) as worker:
                await worker.send({"cmd": PROOF, "env": 0}, 30)
                if not sync:
                    worker.unsynced = 0  # the lease then skips its sync
        return (time.perf_counter() - started) / leases
    finally:
        await pool.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leases", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with_sync, without = [], []
    for _ in range(args.repeats):
        with_sync.append(await per_lease(args.leases, sync=True))
        without.append(await per_lease(args.leases, sync=False))
    a, b = statistics.median(with_sync), statistics.median(without)
    print(f"leases: {args.leases} x {args.repeats} runs (median)")
    print(f"per lease with the closing sync:    {a * 1e3:.3f} ms")
    print(f"per lease without it:               {b * 1e3:.3f} ms")
    print(f"the sync's cost per proof:          {(a - b) * 1e3:.3f} ms")


if __name__ == "__main__":
    asyncio.run(main())
