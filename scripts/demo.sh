#!/usr/bin/env bash
# The main job: renders examples/demo.timeline.json (real photos and recordings in
# examples/media) into out/demo/: final.mp4, captions.srt, captions.vtt, thumbnail.jpg,
# report.json.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -q -p studio-cli
./target/release/studio timeline render examples/demo.timeline.json --input-dir examples/media -o out/demo
