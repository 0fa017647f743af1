"""Run by test_otel_instrumentation in its own interpreter: ConfluentKafkaInstrumentor patches
confluent_kafka's classes process-wide, which must not leak into the other tests.

argv: control file URL, topic. Produces one message inside a span, prints {"ready": true}, waits on
stdin while the test flips the control file, produces one more after the cutover, and prints the
handle classes it used.
"""

import json
import sys

from opentelemetry import trace
from opentelemetry.instrumentation.confluent_kafka import ConfluentKafkaInstrumentor
from opentelemetry.sdk.trace import TracerProvider

trace.set_tracer_provider(TracerProvider())
ConfluentKafkaInstrumentor().instrument()

import kafkashim  # noqa: E402 - after instrument(), as an instrumented application would

source, topic = sys.argv[1], sys.argv[2]
p = kafkashim.Producer({"kafkashim.source": source})
tracer = trace.get_tracer("app")
handles = [type(p._handle).__name__]
with tracer.start_as_current_span("before"):
    p.produce(topic, b"before")
assert p.flush(10) == 0
print(json.dumps({"ready": True}), flush=True)
sys.stdin.readline()  # the test flips the control file, then says go
while p.cluster != "destination":
    p.poll(0.05)
handles.append(type(p._handle).__name__)
with tracer.start_as_current_span("after"):
    p.produce(topic, b"after")
assert p.flush(10) == 0
p.close()
print(json.dumps({"handles": handles}), flush=True)
