#!/usr/bin/env bash
# Load test of the platform from a second process on loopback: wrk against the gateway (release
# binaries, throw-away databases, rate limits lifted) on
#   1. GET /v1/projects/{id} with a valid token (JWT check + gRPC to the project service + Postgres)
#   2. POST /v1/auth/sign-in (argon2id-bound: m = 19 MiB, t = 2, p = 1)
# and prints throughput and p50/p99 latency for each.
#   scripts/bench-api.sh [SECONDS] [CONNECTIONS]     (default 15 s, 32 connections)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
command -v wrk >/dev/null 2>&1 || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
seconds="${1:-15}"
connections="${2:-32}"
source scripts/lib/platform.sh
platform_build release
admin="${STUDIO_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
drop() { for db in studio_bench_user studio_bench_project; do psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"; done; }
drop
trap 'platform_stop; drop' EXIT
for key in PER_IP_PER_MINUTE PER_IP_BURST PER_USER_PER_MINUTE PER_USER_BURST AUTH_PER_IP_PER_MINUTE AUTH_PER_IP_BURST; do
  export "STUDIO__GATEWAY__RATE_LIMIT__$key=100000000"
done
export RUST_LOG=warn
platform_start bench 28080
token=$(platform_token bench@example.com | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
project=$(curl -fsS -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"title":"Bench","topic":"load testing"}' "$GATEWAY/v1/projects" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
lua=$(mktemp --suffix=.lua)
cat >"$lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"email":"bench@example.com","password":"correct horse battery"}'
wrk.headers["Content-Type"] = "application/json"
LUA
report() {
  local name="$1" out="$2"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  printf '%-28s %10s req/s   p50 %8s   p99 %8s   %s\n' "$name" "$rps" "$p50" "$p99" "${errors:-no errors}"
}
echo "wrk: ${seconds}s, ${connections} connections, 2 threads, $(nproc) cores"
get=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "Authorization: Bearer $token" "$GATEWAY/v1/projects/$project")
signin=$(wrk -t2 -c"$((connections < 8 ? connections : 8))" -d"${seconds}s" --latency -s "$lua" "$GATEWAY/v1/auth/sign-in")
rm -f "$lua"
report "GET /v1/projects/{id}" "$get"
report "POST /v1/auth/sign-in" "$signin"
