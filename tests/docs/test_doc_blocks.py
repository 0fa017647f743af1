"""Every Python and shell block of README.md and docs/ runs, or says why not (tests/docs/blocks.py).

The pages run against the session's two real clusters: ``KAFKASHIM_SOURCE`` names a control file with
``origin`` (active) and ``destination``, the topic ``orders`` is created afresh on both for each page, and
``consul``, ``vault`` and ``aws`` commands reach the Consul and Vault doubles and moto's
Secrets Manager (or real Consul and Vault, with ``CONSUL_HTTP_ADDR`` / ``VAULT_ADDR``) through the
stand-ins in tests/docs/consul_cli.py and tests/docs/store_cli.py.
"""

from __future__ import annotations

import os
import re
import sys
import time
import tomllib
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from testkit.kafka import KafkaCluster
from tests.conftest import ControlFile
from tests.docs.blocks import REPO_ROOT, documents, fences, marking_problems, page_id, run_page
from tests.stores import ConsulStore, VaultStore

PAGES = documents()


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_every_block_is_run_or_marked(path: Path) -> None:
    assert marking_problems(path) == []


def test_the_marking_check_catches_what_it_should(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```sh\necho not run\n```\n\n"  # a shell tag nothing runs
        "<!-- skip: next -->\n```bash\necho x\n```\n\n"  # no reason
        '<!-- skip: next "data" -->\n```json\n{}\n```\n\n'  # marker before a block that is not run anyway
        "```python\nprint(1)\n```\n"
    )
    problems = marking_problems(page)
    assert [p.split(":")[1] for p in problems] == ["1", "5", "10"], problems


def test_fences_are_found_with_their_tags() -> None:
    text = "```python\na\n```\n\n````text\n```bash\nnot a fence of its own\n```\n````\n\n~~~json\n{}\n~~~\n"
    assert [(f.language, f.line) for f in fences(text)] == [("python", 1), ("text", 5), ("json", 11)]


def test_named_extras_exist() -> None:
    """Every ``kafkashim[...]`` the pages tell readers to install names extras pyproject.toml defines."""
    extras = set(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    named = {
        extra.strip()
        for path in PAGES
        for group in re.findall(r"kafkashim\[([^\]]+)\]", path.read_text())
        for extra in group.split(",")
    }
    assert {"consul", "vault", "aws"} <= named
    assert named <= extras, named - extras


def _fresh_topic(clusters: list[KafkaCluster], topic: str) -> None:
    """Delete ``topic`` where it exists and create it again with three partitions, on every cluster."""
    for cluster in clusters:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
        if topic in admin.list_topics(timeout=10).topics:
            for fut in admin.delete_topics([topic], operation_timeout=30).values():
                fut.result(timeout=30)
        deadline = time.monotonic() + 60
        while True:
            try:
                cluster.create_topic(topic, partitions=3)
                break
            except KafkaException:  # still being deleted
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


@pytest.fixture
def doc_env(
    two_cluster_control: ControlFile,
    origin: KafkaCluster,
    destination: KafkaCluster,
    consul_store: ConsulStore,
    vault_store: VaultStore,
    moto_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """The environment a reader of the pages has: KAFKASHIM_SOURCE; Consul, Vault and AWS Secrets Manager
    with their command lines (stand-ins over the doubles and moto, or real servers: tests/stores.py)."""
    _fresh_topic([origin, destination], "orders")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for command, module in (("consul", "consul_cli"), ("vault", "store_cli vault"), ("aws", "store_cli aws")):
        wrapper = bin_dir / command
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tests.docs.{module} "$@"\n')
        wrapper.chmod(0o755)
    for name in list(os.environ):
        if name.startswith(("VAULT_", "KAFKASHIM_VAULT_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VAULT_ADDR", vault_store.url)
    monkeypatch.setenv("VAULT_TOKEN", vault_store.root_token)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_server,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KAFKASHIM_SOURCE", two_cluster_control.url)
    monkeypatch.setenv("CONSUL_HTTP_ADDR", consul_store.address)
    if consul_store.token:
        monkeypatch.setenv("CONSUL_HTTP_TOKEN", consul_store.token)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    return dict(os.environ)


@pytest.mark.integration
@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_page_blocks_run(path: Path, doc_env: dict[str, str]) -> None:
    outcomes = list(run_page(path, {"__bash_env__": doc_env}))
    skipped = [o for o in outcomes if o.kind == "skipped"]
    assert all(o.detail for o in skipped), skipped  # every skip says why
