#!/usr/bin/env bash
# The test suite: unit tests plus acceptance tests that render with real FFmpeg, espeak-ng and
# FluidSynth and check the results with ffprobe/ffmpeg, using examples/media and examples/texts.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --all-targets "$@"
