"""Resolve the Apache Kafka class path from Maven Central, once.

`testkit/pom.xml` names the artifacts (``org.apache.kafka:kafka_2.13``, ``connect-mirror`` and a log4j2
binding). Maven downloads them into its own cache (``~/.m2/repository``) and we store the resolved class
path in ``~/.cache/kafkashim/classpath-<pom digest>.txt``. A second call with the same pom and every jar
still on disk reads that file and runs no Maven at all.

Run ``python -m testkit.jars`` to resolve ahead of time (``.ci/run`` does, so the download is not charged
to the first test).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

POM = Path(__file__).with_name("pom.xml")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kafkashim"


def _cached_classpath_file() -> Path:
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
    return cache_dir() / f"classpath-{digest}.txt"


def _read_if_complete(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    entries = [e for e in path.read_text().strip().split(os.pathsep) if e]
    if not entries or not all(Path(e).is_file() for e in entries):
        return None
    return entries


def resolve_classpath(*, quiet: bool = True) -> list[str]:
    """Return the jar paths of the Kafka broker, tools and MirrorMaker 2, resolving them if needed."""
    target = _cached_classpath_file()
    cached = _read_if_complete(target)
    if cached is not None:
        return cached
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError(
            "Apache Maven ('mvn') is needed to fetch the Kafka jars from Maven Central; "
            "install it (Debian: apt-get install maven) or run .ci/run, which does."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    cmd = [
        mvn,
        "-B",
        "-f",
        str(POM),
        "dependency:build-classpath",
        f"-Dmdep.outputFile={partial}",
    ]
    if quiet:
        cmd.insert(1, "-q")
    proc = subprocess.run(cmd, capture_output=quiet, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stdout or "") + (proc.stderr or "") if quiet else ""
        raise RuntimeError(f"Maven could not resolve the Kafka class path (exit {proc.returncode}):\n{detail}")
    partial.replace(target)
    resolved = _read_if_complete(target)
    if resolved is None:
        raise RuntimeError(f"Maven wrote an empty or incomplete class path to {target}")
    return resolved


def java_executable() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise RuntimeError("A Java 17+ runtime ('java') is needed to run the local Kafka clusters.")
    return found


if __name__ == "__main__":
    jars = resolve_classpath(quiet="-v" not in sys.argv)
    print(f"{len(jars)} jars on the Kafka class path ({_cached_classpath_file()})")
