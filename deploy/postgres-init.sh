#!/usr/bin/env bash
# One database per service (DESIGN.md §1), each owned by the service's own role: no superuser,
# no other database (security review M10). Run once by the postgres image on an empty volume;
# the passwords come from the container's environment (see deploy/env.sh).
set -euo pipefail
for service in user project ai_job; do
  var="STUDIO_DB_PASSWORD_${service^^}"
  password="${!var:?set $var}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v role="studio_$service" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password' NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
