#!/usr/bin/env bash
# The main job: makes a narrated video of Aesop's "The Hare and the Tortoise" (examples/texts, a
# copy of the public-domain Project Gutenberg text) with local providers only — planned, narrated
# by Piper's neural voice (espeak-ng where Piper is missing), illustrated, scored with FluidSynth, captioned — into out/hare/: final.mp4,
# captions.srt, captions.vtt, thumbnail.jpg, plan.json, timeline.json, report.json.
# Extra arguments go to `studio render` (e.g. --aspect 16:9 --media examples/media/images).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -q -p studio-cli
./target/release/studio render \
  --text examples/texts/aesop-fables-townsend.txt \
  --section "The Hare and the Tortoise" \
  --aspect 9:16 \
  -o out/hare "$@"
