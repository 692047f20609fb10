# The `studio` CLI with FFmpeg, espeak-ng and FluidSynth: docker build -f docker/studio.Dockerfile -t studio .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p studio-cli

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg fonts-dejavu-core espeak-ng fluidsynth fluid-soundfont-gm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/studio /usr/local/bin/studio
RUN useradd --create-home studio
USER studio
WORKDIR /work
ENTRYPOINT ["studio"]
