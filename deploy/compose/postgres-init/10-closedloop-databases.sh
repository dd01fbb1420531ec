#!/usr/bin/env bash
# One database and one role per service: a service never reads another service's database.
# Run once by the postgres image's entrypoint, on an empty data volume.
# Passwords come from <SERVICE>_DB_PASSWORD in the container's environment (from .env).
set -euo pipefail

for service in identity ingest classify ticketing notify console insights; do
  password_var="${service^^}_DB_PASSWORD"
  password="${!password_var:?$password_var is not set}"
  psql --set ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
       --set role="$service" --set password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
