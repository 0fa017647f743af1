"""The test kit's own pure pieces."""

from __future__ import annotations

import base64

from testkit.kafka import _cluster_id


def test_cluster_ids_are_16_random_bytes_and_never_look_like_an_option() -> None:
    ids = {_cluster_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert not any(i.startswith("-") for i in ids)  # ~1 in 64 would without the guard
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
