"""A stand-in for the ``consul`` command line, for the documentation's runbook blocks.

Consul's binary cannot be installed here. The pages show SREs' ``consul kv`` commands; the doc tests run
them with this module on ``PATH`` (as ``consul``), talking HTTP through py-consul to whatever
``CONSUL_HTTP_ADDR`` names: the Consul double, or a real Consul.

Reproduced, as hashicorp/consul's ``command/kv`` documents them: ``kv put [-cas -modify-index=N] KEY
[VALUE]`` (prints ``Success! Data written to: KEY``; a failed check-and-set prints ``Error! Did not write
to KEY: CAS failed`` and exits 1), ``kv get KEY`` (the value) and ``kv get -detailed KEY`` (one
``Field  value`` line per field, fields sorted), ``kv delete KEY``; ``CONSUL_HTTP_ADDR`` and
``CONSUL_HTTP_TOKEN``. Not reproduced: every other command and flag (an unknown one exits 2 with a
message, so a page using one fails its test instead of passing untested).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import consul


def _client() -> consul.Consul:
    addr = os.environ.get("CONSUL_HTTP_ADDR", "127.0.0.1:8500").split("://")[-1]
    host, _, port = addr.rpartition(":")
    return consul.Consul(host=host, port=int(port), token=os.environ.get("CONSUL_HTTP_TOKEN") or None)


def _usage(message: str) -> int:
    print(f"consul (doc-test stand-in): {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str]) -> int:
    if len(argv) < 2 or argv[0] != "kv":
        return _usage(f"unsupported command {' '.join(argv)!r}")
    verb, rest = argv[1], list(argv[2:])
    flags = [a for a in rest if a.startswith("-")]
    args = [a for a in rest if not a.startswith("-")]
    kv = _client().kv
    if verb == "put":
        cas: int | None = None
        for flag in flags:
            if flag == "-cas":
                cas = cas or 0
            elif flag.startswith("-modify-index="):
                cas = int(flag.split("=", 1)[1])
            else:
                return _usage(f"unsupported flag {flag}")
        if not 1 <= len(args) <= 2:
            return _usage("kv put KEY [VALUE]")
        key, value = args[0], (args[1] if len(args) == 2 else "")
        if not kv.put(key, value, cas=cas if "-cas" in flags else None):
            print(f"Error! Did not write to {key}: CAS failed", file=sys.stderr)
            return 1
        print(f"Success! Data written to: {key}")
        return 0
    if verb == "get":
        if any(f != "-detailed" for f in flags) or len(args) != 1:
            return _usage("kv get [-detailed] KEY")
        _, entry = kv.get(args[0])
        if entry is None:
            print(f"Error! No key exists at: {args[0]}", file=sys.stderr)
            return 1
        value = (entry.get("Value") or b"").decode()
        if "-detailed" not in flags:
            print(value)
            return 0
        fields = {
            "CreateIndex": entry["CreateIndex"],
            "Flags": entry.get("Flags", 0),
            "Key": entry["Key"],
            "LockIndex": entry.get("LockIndex", 0),
            "ModifyIndex": entry["ModifyIndex"],
            "Session": entry.get("Session") or "-",
            "Value": value,
        }
        for name, field in fields.items():
            print(f"{name:<17}{field}")
        return 0
    if verb == "delete":
        if flags or len(args) != 1:
            return _usage("kv delete KEY")
        kv.delete(args[0])
        print(f"Success! Deleted key: {args[0]}")
        return 0
    return _usage(f"unsupported kv command {verb!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
