# The `studio` CLI with FFmpeg: docker build -f docker/studio.Dockerfile -t studio .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p studio-cli

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg fonts-dejavu-core ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/studio /usr/local/bin/studio
RUN useradd --create-home studio
USER studio
WORKDIR /work
ENTRYPOINT ["studio"]
