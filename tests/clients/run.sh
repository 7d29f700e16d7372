#!/usr/bin/env bash
# Real client libraries against `cutover sim`, unmodified, on their own default endpoints.
#
# Inside a throw-away user+network+mount namespace (`unshare -rnm`: loopback only, no real root
# needed) the real host names (login.microsoftonline.com, contoso-demo.crm.dynamics.com,
# contoso-demo.operations.dynamics.com, ...) resolve to 127.0.0.1 through a bind-mounted
# /etc/hosts; tls-front.mjs terminates TLS on 127.0.0.1:443 with a CA and certificate generated
# for this run and forwards plain HTTP to the simulator, which runs in the same namespace. The
# clients trust the CA through NODE_EXTRA_CA_CERTS (node) and REQUESTS_CA_BUNDLE/SSL_CERT_FILE
# (python). Nothing leaves loopback.
#
# Prints one line per check, `ok <name>: <detail>` or `FAIL <name>: <detail>`, then a summary;
# exits 1 when any check failed, 2 when the harness itself could not run.
#
# Environment:
#   CUTOVER_BIN       the cutover binary (default: target/debug/cutover, built if missing)
#   CLIENTS_SCENARIO  scenario file for the simulator (default: tests/clients/scenario.yaml);
#                     `demo` = the embedded demo scenario
#   CLIENTS_PYTHON    1 (default) also runs the Python clients (msal, azure-identity) from
#                     tests/clients/.venv, created with pip from requirements.txt; 0 skips them
#   CLIENTS_CRUTCH    1 = DIAGNOSTIC ONLY: the front itself answers Entra's discovery documents and
#                     rewrites the simulator's loopback links to the real host, to list the
#                     failures hidden behind "no token" and "next page 404". Never a pass: the
#                     run always exits nonzero.
#   CLIENTS_KEEP      1 = keep the run's work directory (certificates, logs) and print its path
#   CHECK_TIMEOUT_MS  deadline per check (default 60000)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

TENANT_ID=${TENANT_ID:-8f4c5bb8-6e0a-4c8e-9d2b-2c1f3a4d5e6f}
DATAVERSE_HOST=contoso-demo.crm.dynamics.com
FNO_HOST=contoso-demo.operations.dynamics.com
# Names the certificate covers and /etc/hosts maps to 127.0.0.1 inside the namespace.
HOSTS=(
  login.microsoftonline.com login.windows.net login.microsoft.com
  "$DATAVERSE_HOST" contoso-demo.api.crm.dynamics.com globaldisco.crm.dynamics.com
  "$FNO_HOST"
  contoso-demo.dualwrite.dynamics.com
  projectmanagementservice.weu-il107.gateway.prod.island.powerapps.com
)

die() {
  echo "run.sh: $*" >&2
  exit 2
}

# ---------------------------------------------------------------- outside the namespace -------
if [[ "${1:-}" != "--inside" ]]; then
  for tool in node npm openssl unshare ip mount mktemp; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
  done
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  ((node_major >= 20)) || die "node $(node --version) is too old: @azure/msal-node needs node >= 20"

  # Dependencies, exactly as locked. npm ci only when the lockfile changed since the last install.
  if [[ ! -f "$HERE/node_modules/.package-lock.json" || "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]]; then
    (cd "$HERE" && npm ci --no-audit --no-fund --ignore-scripts >&2) || die "npm ci failed"
  fi

  if [[ "${CLIENTS_PYTHON:-1}" == 1 ]]; then
    command -v python3 >/dev/null || die "missing tool: python3 (or set CLIENTS_PYTHON=0)"
    stamp="$HERE/.venv/.requirements.txt"
    if [[ ! -x "$HERE/.venv/bin/python" ]] || ! cmp -s "$HERE/requirements.txt" "$stamp"; then
      python3 -m venv "$HERE/.venv" >&2 || die "python3 -m venv failed (install python3-venv, or set CLIENTS_PYTHON=0)"
      "$HERE/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt" >&2 \
        || die "pip install -r requirements.txt failed"
      cp "$HERE/requirements.txt" "$stamp"
    fi
  fi

  bin=${CUTOVER_BIN:-$ROOT/target/debug/cutover}
  if [[ ! -x "$bin" ]]; then
    [[ -z "${CUTOVER_BIN:-}" ]] || die "CUTOVER_BIN=$bin is not executable"
    (cd "$ROOT" && cargo build --bin cutover >&2) || die "cargo build failed"
  fi
  export CUTOVER_BIN=$bin

  # A user namespace maps us to root inside; the network namespace has only loopback, so port 443
  # and /etc/hosts are ours without touching the machine.
  unshare -rnm true 2>/dev/null || die "unshare -rnm is not permitted here (user namespaces disabled?)"
  exec unshare -rnm -- bash "${BASH_SOURCE[0]}" --inside
fi

# ---------------------------------------------------------------- inside the namespace --------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cutover-clients.XXXXXX")
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ "${CLIENTS_KEEP:-0}" == 1 ]]; then
    echo "run.sh: work directory kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until `cond` (a command) succeeds, or fails after `secs` seconds. Polling, not sleeping
# for a guessed time: it returns as soon as the condition holds.
poll() {
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < deadline)) || die "timed out after ${secs}s waiting for $what"
    for pid in "${PIDS[@]}"; do
      kill -0 "$pid" 2>/dev/null || die "a harness process died while waiting for $what (see $WORK)"
    done
    sleep 0.05
  done
}

ip link set lo up
{
  echo "127.0.0.1 localhost"
  echo "::1 localhost"
  for h in "${HOSTS[@]}"; do echo "127.0.0.1 $h"; done
} >"$WORK/hosts"
mount --bind "$WORK/hosts" /etc/hosts

# A CA and a server certificate for this run only.
san=$(printf 'DNS:%s,' "${HOSTS[@]}")
san=${san%,}
{
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$WORK/ca.key" -out "$WORK/ca.pem" -days 2 -subj "/CN=cutover client harness throw-away CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$WORK/server.key" -out "$WORK/server.csr" -subj "/CN=${HOSTS[0]}"
  printf '%s\n' "subjectAltName=$san" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid:always" >"$WORK/server.ext"
  openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
    -out "$WORK/server.pem" -days 2 -extfile "$WORK/server.ext"
} >"$WORK/openssl.log" 2>&1 || die "certificate generation failed: $(tail -3 "$WORK/openssl.log")"

# The app registration for this run: a client id and a secret nobody else knows.
CLIENT_ID=$(node -p 'require("crypto").randomUUID()')
CLIENT_SECRET=$(openssl rand -hex 24)
scenario_args=()
case "${CLIENTS_SCENARIO:-$HERE/scenario.yaml}" in
  demo) ;; # the embedded demo: any client id and secret are accepted
  *)
    src=${CLIENTS_SCENARIO:-$HERE/scenario.yaml}
    [[ -f "$src" ]] || die "no scenario file $src"
    sed -e "s/__CLIENT_ID__/$CLIENT_ID/" -e "s/__CLIENT_SECRET__/$CLIENT_SECRET/" -e "s/__TENANT_ID__/$TENANT_ID/" \
      "$src" >"$WORK/scenario.yaml"
    scenario_args=(--scenario "$WORK/scenario.yaml")
    ;;
esac

"$CUTOVER_BIN" sim --listen 127.0.0.1:0 "${scenario_args[@]}" >"$WORK/sim.out" 2>"$WORK/sim.err" &
PIDS+=($!)
poll 60 "the simulator's first line" grep -q '^listening on http://' "$WORK/sim.out"
SIM_URL=$(sed -n 's/^listening on \(http:\/\/[^ ]*\).*/\1/p' "$WORK/sim.out" | head -1)

export FRONT_LOG=$WORK/front.jsonl
: >"$FRONT_LOG"
CRUTCH=${CLIENTS_CRUTCH:-0} UPSTREAM=$SIM_URL TLS_KEY=$WORK/server.key TLS_CERT=$WORK/server.pem \
  node "$HERE/tls-front.mjs" >"$WORK/front.out" 2>"$WORK/front.err" &
PIDS+=($!)
poll 30 "the TLS front" grep -q '^front ready' "$WORK/front.out"

export TENANT_ID CLIENT_ID CLIENT_SECRET SIM_URL
export AUTHORITY_HOST=https://login.microsoftonline.com
export DATAVERSE_URL=https://$DATAVERSE_HOST
export FNO_URL=https://$FNO_HOST
export NODE_EXTRA_CA_CERTS=$WORK/ca.pem
export REQUESTS_CA_BUNDLE=$WORK/ca.pem SSL_CERT_FILE=$WORK/ca.pem
# No proxy settings from the caller may divert the clients.
unset HTTPS_PROXY HTTP_PROXY https_proxy http_proxy ALL_PROXY all_proxy NO_PROXY no_proxy

if [[ "${CLIENTS_CRUTCH:-0}" == 1 ]]; then
  echo "# CLIENTS_CRUTCH=1: the front answers Entra discovery and rewrites loopback links (diagnostic run, never a pass)"
fi
echo "# simulator $SIM_URL, scenario ${CLIENTS_SCENARIO:-tests/clients/scenario.yaml}; node $(node --version)"

RESULTS=$WORK/results.txt
: >"$RESULTS"
run_client() {
  local name=$1
  shift
  local rc=0
  "$@" 2>"$WORK/$name.err" | tee -a "$RESULTS" || rc=$?
  # 0 = all ok, 3 = some check failed (printed); anything else is a crash of the script.
  if ((rc != 0 && rc != 3)); then
    echo "FAIL $name.script: exited $rc: $(tail -2 "$WORK/$name.err" | tr '\n' ' ' | cut -c1-400)" | tee -a "$RESULTS"
  fi
}

run_client msal node "$HERE/msal.mjs"
run_client dataverse node "$HERE/dataverse.mjs"
run_client fno node "$HERE/fno.mjs"
if [[ "${CLIENTS_PYTHON:-1}" == 1 ]]; then
  run_client python "$HERE/.venv/bin/python" "$HERE/python/entra.py"
fi

checks=$(grep -cE '^(ok|FAIL) ' "$RESULTS" || true)
failed=$(grep -c '^FAIL ' "$RESULTS" || true)
echo "# $checks checks, $failed failed"
if [[ "${CLIENTS_KEEP:-0}" == 1 ]]; then
  echo "# front log: $FRONT_LOG"
fi
((failed == 0)) || exit 1
if [[ "${CLIENTS_CRUTCH:-0}" == 1 ]]; then
  echo "# every check passed, but only with the diagnostic crutch: not a pass"
  exit 1
fi
