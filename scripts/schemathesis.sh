#!/usr/bin/env bash
# Property-based API testing: runs Schemathesis (from PyPI) against the gateway's own
# /openapi.json with a valid access token, on a platform started from the debug
# binaries with throw-away databases. Fails on any server error (5xx) or any response that breaks
# the documented schema, status codes or content types.
#   scripts/schemathesis.sh [MAX_EXAMPLES]     (default 40 per operation)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
command -v schemathesis >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check 'schemathesis>=4,<5'
source scripts/lib/platform.sh
platform_build debug
admin="${STUDIO_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
for db in studio_fuzz_user studio_fuzz_project; do psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"; done
trap 'platform_stop; for db in studio_fuzz_user studio_fuzz_project; do psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"; done' EXIT
# Generous rate limits: the fuzzer is one client sending thousands of requests.
export STUDIO__GATEWAY__RATE_LIMIT__PER_IP_PER_MINUTE=1000000 STUDIO__GATEWAY__RATE_LIMIT__PER_IP_BURST=1000000 \
  STUDIO__GATEWAY__RATE_LIMIT__PER_USER_PER_MINUTE=1000000 STUDIO__GATEWAY__RATE_LIMIT__PER_USER_BURST=1000000 \
  STUDIO__GATEWAY__RATE_LIMIT__AUTH_PER_IP_PER_MINUTE=1000000 STUDIO__GATEWAY__RATE_LIMIT__AUTH_PER_IP_BURST=1000000
platform_start fuzz 18080
token=$(platform_token fuzz@example.com | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
schemathesis run "$GATEWAY/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${1:-40}" \
  --generation-deterministic \
  --no-color
