# Shell functions to run the platform's services (user, project, ai-job, media-render, gateway)
# as processes against the local PostgreSQL and RabbitMQ. Sourced by scripts/dev.sh,
# scripts/schemathesis.sh, scripts/bench-api.sh.
#
#   platform_build release|debug      builds the five binaries
#   platform_start NAME PORT_BASE     creates databases studio_NAME_{user,project,ai_job} if
#                                     missing and starts the services on PORT_BASE+0 (gateway),
#                                     +1/+2/+3/+4 (HTTP of user, project, ai-job, media-render),
#                                     +51/+52/+53/+54 (their gRPC), +55 (ai-job's render
#                                     leases); queues are prefixed "NAME.",
#                                     objects kept in target/platform-NAME/objects (local
#                                     storage); logs under target/platform-NAME/
#   platform_stop                     stops them (SIGTERM: they finish in-flight requests)
#
# This is a development machine's platform: the user service may use the public development
# key-encryption key (set STUDIO__USER__AUTH__KEY_ENCRYPTION_KEY to use your own), and the
# services the public development service-identity keys (STUDIO_DEV_KEYS=false refuses them).
export STUDIO__USER__IDENTITY__ALLOW_DEVELOPMENT_KEYS="${STUDIO_DEV_KEYS:-true}"
export STUDIO__PROJECT__IDENTITY__ALLOW_DEVELOPMENT_KEYS="${STUDIO_DEV_KEYS:-true}"
export STUDIO__AI_JOB__IDENTITY__ALLOW_DEVELOPMENT_KEYS="${STUDIO_DEV_KEYS:-true}"
export STUDIO__MEDIA_RENDER__IDENTITY__ALLOW_DEVELOPMENT_KEYS="${STUDIO_DEV_KEYS:-true}"
export STUDIO__GATEWAY__IDENTITY__ALLOW_DEVELOPMENT_KEYS="${STUDIO_DEV_KEYS:-true}"

PLATFORM_PIDS=()

platform_build() {
  local profile="$1" flag=""
  [ "$profile" = release ] && flag="--release"
  SQLX_OFFLINE=true cargo build $flag -q -p studio-user -p studio-project -p studio-ai-job \
    -p studio-media-render -p studio-gateway
  PLATFORM_BIN="${CARGO_TARGET_DIR:-target}/$profile"
}

platform_start() {
  local name="$1" base="$2"
  local admin="${STUDIO_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
  local server="${admin%/*}"
  for db in "studio_${name}_user" "studio_${name}_project" "studio_${name}_ai_job"; do
    if [ -z "$(psql "$admin" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
      psql "$admin" -qc "CREATE DATABASE $db"
    fi
  done
  PLATFORM_LOGS="target/platform-$name"
  mkdir -p "$PLATFORM_LOGS"
  export STUDIO_CONFIG_DIR="$PWD/config"
  local jwks="http://127.0.0.1:$((base + 1))/.well-known/jwks.json"
  STUDIO__USER__GRPC_ADDR="127.0.0.1:$((base + 51))" \
  STUDIO__USER__HTTP_ADDR="127.0.0.1:$((base + 1))" \
  STUDIO__USER__DATABASE__URL="$server/studio_${name}_user" \
  STUDIO__USER__AUTH__ALLOW_DEVELOPMENT_KEK="${STUDIO__USER__AUTH__ALLOW_DEVELOPMENT_KEK:-true}" \
    "$PLATFORM_BIN/user" >"$PLATFORM_LOGS/user.log" 2>&1 &
  PLATFORM_PIDS+=($!)
  platform_wait "http://127.0.0.1:$((base + 1))/readyz" user
  STUDIO__PROJECT__GRPC_ADDR="127.0.0.1:$((base + 52))" \
  STUDIO__PROJECT__HTTP_ADDR="127.0.0.1:$((base + 2))" \
  STUDIO__PROJECT__DATABASE__URL="$server/studio_${name}_project" \
  STUDIO__PROJECT__AUTH__JWKS_URL="$jwks" \
    "$PLATFORM_BIN/project" >"$PLATFORM_LOGS/project.log" 2>&1 &
  PLATFORM_PIDS+=($!)
  local objects="$PWD/$PLATFORM_LOGS/objects"
  mkdir -p "$objects"
  STUDIO__AI_JOB__GRPC_ADDR="127.0.0.1:$((base + 53))" \
  STUDIO__AI_JOB__LEASE_ADDR="127.0.0.1:$((base + 55))" \
  STUDIO__AI_JOB__HTTP_ADDR="127.0.0.1:$((base + 3))" \
  STUDIO__AI_JOB__DATABASE__URL="$server/studio_${name}_ai_job" \
  STUDIO__AI_JOB__AUTH__JWKS_URL="$jwks" \
  STUDIO__AI_JOB__PROJECT_URL="http://127.0.0.1:$((base + 52))" \
  STUDIO__AI_JOB__QUEUE_PREFIX="$name." \
  STUDIO__AI_JOB__STORAGE__BACKEND=local STUDIO__AI_JOB__STORAGE__ROOT="$objects" \
  STUDIO__AI_JOB__WORKER__WORK_DIR="$PWD/$PLATFORM_LOGS/ai-job-work" \
    "$PLATFORM_BIN/ai-job" >"$PLATFORM_LOGS/ai-job.log" 2>&1 &
  PLATFORM_PIDS+=($!)
  platform_wait "http://127.0.0.1:$((base + 3))/readyz" ai-job
  STUDIO__MEDIA_RENDER__GRPC_ADDR="127.0.0.1:$((base + 54))" \
  STUDIO__MEDIA_RENDER__HTTP_ADDR="127.0.0.1:$((base + 4))" \
  STUDIO__MEDIA_RENDER__AI_JOB_LEASE_URL="http://127.0.0.1:$((base + 55))" \
  STUDIO__MEDIA_RENDER__QUEUE_PREFIX="$name." \
  STUDIO__MEDIA_RENDER__STORAGE__BACKEND=local STUDIO__MEDIA_RENDER__STORAGE__ROOT="$objects" \
  STUDIO__MEDIA_RENDER__WORK_DIR="$PWD/$PLATFORM_LOGS/media-render-work" \
    "$PLATFORM_BIN/media-render" >"$PLATFORM_LOGS/media-render.log" 2>&1 &
  PLATFORM_PIDS+=($!)
  STUDIO__GATEWAY__HTTP_ADDR="127.0.0.1:$base" \
  STUDIO__GATEWAY__USER_URL="http://127.0.0.1:$((base + 51))" \
  STUDIO__GATEWAY__PROJECT_URL="http://127.0.0.1:$((base + 52))" \
  STUDIO__GATEWAY__AI_JOB_URL="http://127.0.0.1:$((base + 53))" \
  STUDIO__GATEWAY__AUTH__JWKS_URL="$jwks" \
    "$PLATFORM_BIN/gateway" >"$PLATFORM_LOGS/gateway.log" 2>&1 &
  PLATFORM_PIDS+=($!)
  platform_wait "http://127.0.0.1:$base/readyz" gateway
  GATEWAY="http://127.0.0.1:$base"
}

platform_wait() {
  for _ in $(seq 1 100); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "$2 did not become ready; see $PLATFORM_LOGS/$2.log" >&2
  tail -20 "$PLATFORM_LOGS/$2.log" >&2 || true
  return 1
}

platform_stop() {
  for pid in "${PLATFORM_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PLATFORM_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PLATFORM_PIDS=()
}

# Registers (or signs in) EMAIL and prints an access token.
platform_token() {
  local email="$1" body
  body="{\"email\":\"$email\",\"password\":\"correct horse battery\"}"
  curl -fsS -H 'content-type: application/json' -d "$body" "$GATEWAY/v1/auth/register" 2>/dev/null \
    || curl -fsS -H 'content-type: application/json' -d "$body" "$GATEWAY/v1/auth/sign-in"
}
