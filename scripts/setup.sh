# Sourced by scripts/demo and scripts/test (and so by .ci/run): everything a fresh machine needs.
#   - Java 17+ and Maven (Debian packages) to fetch and run Apache Kafka from Maven Central; tmux for the
#     CLI's terminal tests
#   - a virtualenv in .venv with kafkashim installed editable, with all extras and dev tools
#   - the Kafka class path resolved once (cached in ~/.m2 and ~/.cache/kafkashim)
# Re-running it on a ready machine costs about a second.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

java_major() {
  java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
}

missing=()
if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ]; then
  missing+=(openjdk-17-jre-headless)
fi
command -v mvn >/dev/null 2>&1 || missing+=(maven)
# tmux: the CLI's terminal tests drive `kafkashim status --watch` in it (tests/unit/test_cli_terminal.py).
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
if [ ${#missing[@]} -gt 0 ]; then
  echo "kafkashim: installing ${missing[*]} (Debian packages)"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
  if [ "$(java_major)" -lt 17 ] && [ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]; then
    export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
    export PATH="$JAVA_HOME/bin:$PATH"
  fi
fi

python_bin="${PYTHON:-python3}"
if ! "$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "kafkashim needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate

# Reinstall only when the dependency list changed.
stamp=.venv/.kafkashim-installed
wanted="$(sha256sum pyproject.toml | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
  echo "kafkashim: installing Python dependencies into .venv"
  python -m pip install -q --disable-pip-version-check --upgrade pip
  python -m pip install -q --disable-pip-version-check -e '.[all,dev]'
  echo "$wanted" >"$stamp"
fi

python -m testkit.jars
