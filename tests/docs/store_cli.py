"""Stand-ins for the ``vault`` and ``aws`` command lines, for the documentation's runbook blocks.

Neither binary can be installed here. The doc tests put wrappers named ``vault`` and ``aws`` on ``PATH``
that run this module (``python -m tests.docs.store_cli vault|aws ...``), which makes the same API calls
through hvac and boto3, configured from the environment the way the real CLIs are.

Reproduced: ``vault kv put <mount>/<path> key=value...`` (KV v2 create-or-update; ``VAULT_ADDR``,
``VAULT_TOKEN``); ``aws secretsmanager create-secret --name N --secret-string S`` and ``aws secretsmanager
put-secret-value --secret-id N --secret-string S`` (boto3's standard chain, ``AWS_ENDPOINT_URL_*``
included). Their output is a short confirmation, not the real CLIs' tables and JSON. Anything else exits
2, so a page using another command fails its test instead of passing untested.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def _usage(message: str) -> int:
    print(f"(doc-test stand-in): {message}", file=sys.stderr)
    return 2


def vault(argv: Sequence[str]) -> int:
    import hvac

    if len(argv) < 3 or list(argv[:2]) != ["kv", "put"]:
        return _usage(f"vault {' '.join(argv)}: only 'vault kv put <mount>/<path> key=value...'")
    mount, _, path = argv[2].partition("/")
    fields = dict(a.split("=", 1) for a in argv[3:] if "=" in a)
    if not path or len(fields) != len(argv) - 3:
        return _usage("vault kv put <mount>/<path> key=value...")
    client = hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])
    response = client.secrets.kv.v2.create_or_update_secret(path=path, secret=fields, mount_point=mount)
    print(f"Success! {argv[2]} version {response['data']['version']}")
    return 0


def _options(argv: Sequence[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    it = iter(argv)
    for flag in it:
        if not flag.startswith("--"):
            raise ValueError(flag)
        options[flag[2:]] = next(it)
    return options


def aws(argv: Sequence[str]) -> int:
    import boto3

    if len(argv) < 2 or argv[0] != "secretsmanager" or argv[1] not in ("create-secret", "put-secret-value"):
        return _usage(f"aws {' '.join(argv)}: only secretsmanager create-secret / put-secret-value")
    try:
        options = _options(argv[2:])
    except (ValueError, StopIteration):
        return _usage("options are --name / --secret-id and --secret-string, each with a value")
    client = boto3.session.Session().client("secretsmanager")
    if argv[1] == "create-secret" and set(options) == {"name", "secret-string"}:
        result = client.create_secret(Name=options["name"], SecretString=options["secret-string"])
    elif argv[1] == "put-secret-value" and set(options) == {"secret-id", "secret-string"}:
        result = client.put_secret_value(SecretId=options["secret-id"], SecretString=options["secret-string"])
    else:
        return _usage(f"unsupported options {sorted(options)} for {argv[1]}")
    print(f"{result['Name']} {result['VersionId']}")
    return 0


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] not in ("vault", "aws"):
        return _usage("usage: python -m tests.docs.store_cli vault|aws ...")
    return vault(argv[1:]) if argv[0] == "vault" else aws(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
