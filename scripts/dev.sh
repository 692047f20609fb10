#!/usr/bin/env bash
# Runs the platform locally: user, project and gateway services against the local PostgreSQL
# (databases studio_dev_user and studio_dev_project, created when missing), with the settings in
# config/default.toml. REST on http://127.0.0.1:8080 (OpenAPI at /openapi.json). Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/lib/platform.sh
platform_build debug
trap platform_stop EXIT INT TERM
platform_start dev 8080
echo "Studio platform running: gateway $GATEWAY (OpenAPI $GATEWAY/openapi.json); logs in $PLATFORM_LOGS/"
echo "try: curl -s -H 'content-type: application/json' -d '{\"email\":\"me@example.com\",\"password\":\"correct horse battery\"}' $GATEWAY/v1/auth/register"
wait
