"""A forwarding HTTP proxy that can answer in the upstream's place with an AWS JSON-protocol error.

moto implements Secrets Manager faithfully but never throttles and, without IAM enforcement, never
refuses. Tests put this proxy between boto3 and moto's server and switch a fault on: the next matching
calls get the error AWS would send (``HTTP 400 {"__type": "ThrottlingException", "message": ...}``), parsed
by the real botocore; everything else is forwarded to moto untouched.
"""

from __future__ import annotations

import http.client
import threading
from urllib.parse import urlparse

from tests.doubles.http import LoopbackServer, Request, Response

# (HTTP status, message) of the AWS errors the tests inject.
AWS_ERRORS = {
    "ThrottlingException": (400, "Rate exceeded"),
    "AccessDeniedException": (
        400,
        "User: arn:aws:iam::123456789012:user/app is not authorized to perform: "
        "secretsmanager:GetSecretValue on resource: the secret because no identity-based policy allows it",
    ),
    "InternalServiceError": (500, "An internal error occurred"),
}


class AwsFaultProxy:
    """Forwards to ``upstream``; while `fault` is set, answers calls whose ``X-Amz-Target`` operation is in
    `operations` (all when empty) with that error instead."""

    def __init__(self, upstream: str) -> None:
        parsed = urlparse(upstream)
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 80
        self.fault: str | None = None
        self.operations: frozenset[str] = frozenset()
        self.injected = 0
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self.server = LoopbackServer(self.route)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> AwsFaultProxy:
        self.server.start()
        return self

    def close(self) -> None:
        self.server.stop()

    def inject(self, error: str | None, *operations: str) -> None:
        with self._lock:
            self.fault = error
            self.operations = frozenset(operations)

    def route(self, req: Request) -> Response:
        operation = (req.headers.get("X-Amz-Target") or "").rpartition(".")[2]
        with self._lock:
            self.calls.append(operation)
            fault = self.fault if (not self.operations or operation in self.operations) else None
            if fault is not None:
                self.injected += 1
        if fault is not None:
            status, message = AWS_ERRORS[fault]
            return Response(
                status,
                {"__type": fault, "message": message},
                {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "fault-proxy"},
            )
        conn = http.client.HTTPConnection(self._host, self._port, timeout=30)
        try:
            headers = {k: v for k, v in req.headers.items() if k.lower() not in ("host", "content-length")}
            conn.request(req.method, req.path, body=req.body, headers=headers)
            upstream = conn.getresponse()
            body = upstream.read()
            passed = {
                k: v
                for k, v in upstream.getheaders()
                if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date")
            }
            return Response(upstream.status, body, passed)
        finally:
            conn.close()
