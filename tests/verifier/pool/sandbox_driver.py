"""Run the REPL double under one confinement and print what its probes found, as JSON.

Standard library only (plus ``verifier_service.lean.sandbox`` and the double it sits next to in the
kit, both standard library only), so the sandbox tests can run it as an ordinary unprivileged user
with a system Python and a copy of those files: that is the service started by a non-root user, as
in the Docker image.

    python sandbox_driver.py '{"mode": "bwrap", "options": {...}, "command": [...],
                               "probes": ["env HF_TOKEN", ...]}'
"""

from __future__ import annotations

import json
import os
import sys

from repl_double import split_blocks  # the copy next to this file in the kit

from verifier_service.lean.sandbox import Sandbox, UidSandbox, Unconfined

CONFINEMENTS = {"bwrap": Sandbox, "uid": UidSandbox, "none": Unconfined}


def main() -> int:
    spec = json.loads(sys.argv[1])
    options = spec.get("options", {})
    if "readonly_paths" in options:
        options["readonly_paths"] = tuple(options["readonly_paths"])
    confinement = CONFINEMENTS[spec["mode"]](**options)
    command, cwd = spec["command"], spec.get("cwd")
    if spec.get("problem"):
        print(json.dumps({"problem": confinement.problem(command, cwd=cwd)}))
        return 0
    launch = confinement.launch(command, cwd=cwd)
    # "{parent}": this process, the service of the sandboxed one
    spec["probes"] = [p.replace("{parent}", str(os.getpid())) for p in spec["probes"]]
    probes = "\n".join(f"-- double:probe {probe}" for probe in spec["probes"])
    stdin = json.dumps({"cmd": ""}) + "\n\n" + json.dumps({"cmd": probes, "env": 0}) + "\n\n"
    done = launch.run(cwd=cwd, input=stdin.encode(), timeout_s=120)
    replies = [json.loads(block) for block in split_blocks(done.stdout.decode().splitlines())]
    messages = replies[1].get("messages", []) if len(replies) > 1 else []
    print(
        json.dumps(
            {
                "probes": spec["probes"],
                "returncode": done.returncode,
                "stderr": done.stderr.decode()[-2000:],
                "results": [m["data"] for m in messages],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
