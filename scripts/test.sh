#!/usr/bin/env bash
# The test suite: unit tests plus acceptance tests that render with real FFmpeg, espeak-ng and
# FluidSynth and check the results with ffprobe/ffmpeg, using examples/media and examples/texts;
# platform tests that start the user, project and gateway services against the local PostgreSQL
# (STUDIO_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432/postgres), each on fresh
# databases it drops afterwards; queue tests against RabbitMQ and SQS (moto); storage tests
# against an S3 server (s3s-fs, in-process); mail tests against an SMTP sink (aiosmtpd); end-to-end tests (crates/e2e) that run every
# service as its own process, including crash trials (STUDIO_E2E_TRIALS, default 3; the long
# mode is STUDIO_E2E_TRIALS=20).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# moto's SQS server (PyPI) for the SQS queue tests; RabbitMQ tests use the broker on 5672 and a
# private node they start themselves.
command -v moto_server >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check 'moto[server]>=5,<6'
# aiosmtpd (PyPI): the local SMTP sink the mail tests deliver to.
python3 -c "import aiosmtpd" >/dev/null 2>&1 || python3 -m pip install -q --disable-pip-version-check 'aiosmtpd==1.4.6'
# sqlx checks queries against the committed .sqlx/ metadata, not a live database.
export SQLX_OFFLINE=true
# The end-to-end tests start the service binaries from the target folder.
cargo build --workspace --bins
cargo test --workspace --all-targets --exclude studio-e2e "$@"
# One platform at a time: each runs six processes, and on two cores two at once starve each other.
cargo test -p studio-e2e --all-targets "$@" -- --test-threads=1
