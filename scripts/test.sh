#!/usr/bin/env bash
# The test suite: unit tests plus acceptance tests that render with real FFmpeg and check the
# results with ffprobe/ffmpeg, using the media in examples/media.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --all-targets "$@"
