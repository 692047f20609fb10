#!/usr/bin/env bash
# Prints the secrets deploy/docker-compose.yml needs, fresh and random, as a .env file:
#   deploy/env.sh > deploy/.env      (once; docker compose reads it from the compose file's folder)
# Keep the file: the keys seal data (STUDIO_KEK) and the passwords are set on the first start.
set -euo pipefail
key() { openssl rand -base64 32; }
password() { openssl rand -hex 24; }
cat <<ENV
STUDIO_KEK=$(key)
STUDIO_SERVICE_KEY=$(key)
STUDIO_RENDER_LEASE_KEY=$(key)
STUDIO_POSTGRES_PASSWORD=$(password)
STUDIO_DB_PASSWORD_USER=$(password)
STUDIO_DB_PASSWORD_PROJECT=$(password)
STUDIO_DB_PASSWORD_AI_JOB=$(password)
STUDIO_AMQP_PASSWORD=$(password)
STUDIO_S3_SECRET_KEY=$(password)
ENV
