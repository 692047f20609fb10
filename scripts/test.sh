#!/usr/bin/env bash
# The test suite: unit tests plus acceptance tests that render with real FFmpeg, espeak-ng and
# FluidSynth and check the results with ffprobe/ffmpeg, using examples/media and examples/texts;
# platform tests that start the user, project and gateway services against the local PostgreSQL
# (STUDIO_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432/postgres), each on fresh
# databases it drops afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# sqlx checks queries against the committed .sqlx/ metadata, not a live database.
export SQLX_OFFLINE=true
cargo test --workspace --all-targets "$@"
