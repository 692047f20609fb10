# One platform service (user, project, gateway, ai-job, media-render):
#   docker build -f docker/service.Dockerfile --build-arg SERVICE=user -t studio-user .
# ai-job and media-render run the local providers and FFmpeg: add
#   --build-arg RUNTIME_PACKAGES="ffmpeg espeak-ng fluidsynth fluid-soundfont-gm fonts-dejavu-core"
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler && rm -rf /var/lib/apt/lists/*
ARG SERVICE
WORKDIR /src
COPY . .
# Queries are checked against the committed .sqlx/ metadata; no database at build time.
ENV SQLX_OFFLINE=true
RUN cargo build --release -p studio-${SERVICE} && cp target/release/${SERVICE} /service

FROM debian:bookworm-slim
ARG RUNTIME_PACKAGES=""
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl $RUNTIME_PACKAGES \
 && rm -rf /var/lib/apt/lists/* && useradd --create-home studio
COPY --from=build /service /usr/local/bin/service
COPY config /etc/studio
ENV STUDIO_CONFIG_DIR=/etc/studio STUDIO_ENV=production
USER studio
ENTRYPOINT ["/usr/local/bin/service"]
