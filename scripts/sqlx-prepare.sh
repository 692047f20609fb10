#!/usr/bin/env bash
# Regenerates .sqlx/ (the offline query metadata committed for sqlx's compile-time checked
# queries): applies every service's migrations to a scratch database on the local Postgres and
# builds the service crates with SQLX_OFFLINE_DIR set. Run after changing a query or a migration.
set -euo pipefail
cd "$(dirname "$0")/.."
admin="${STUDIO_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
db=studio_sqlx_prepare
psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
url="${admin%/*}/$db"
for m in crates/*/migrations/*.sql; do psql "$url" -q -v ON_ERROR_STOP=1 -f "$m"; done
rm -rf .sqlx && mkdir -p .sqlx
# Touch the crates so the macros run again.
touch crates/user/src/lib.rs crates/project/src/lib.rs crates/ai-job/src/lib.rs crates/credits/src/lib.rs
DATABASE_URL="$url" SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$PWD/.sqlx" \
  cargo check -q -p studio-user -p studio-project -p studio-ai-job -p studio-credits
psql "$admin" -qc "DROP DATABASE $db WITH (FORCE)"
echo "wrote $(ls .sqlx | wc -l) query files to .sqlx/"
