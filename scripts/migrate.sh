#!/usr/bin/env bash
# migrate.sh - applies every services/*/migrations/NNN_*.sql once, in order,
# each in its own transaction together with its record in schema_migrations.
# Idempotent; an advisory lock serialises concurrent runners. Connection:
# PGHOST, PGPORT, PGUSER, PGDATABASE (and PGPASSWORD) as psql reads them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
psql=(psql -X -q -v ON_ERROR_STOP=1)

"${psql[@]}" -c "CREATE TABLE IF NOT EXISTS schema_migrations (
    service    text NOT NULL,
    version    text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, version))"

for file in "$root"/lib/migrations/*.sql "$root"/services/*/migrations/*.sql; do
    [ -e "$file" ] || continue
    service=$(basename "$(dirname "$(dirname "$file")")")   # lib: the shared runtime
    version=$(basename "$file" .sql)
    if ! [[ $service =~ ^[a-z0-9_]+$ && $version =~ ^[0-9]+_[a-z0-9_]+$ ]]; then
        echo "migrate: bad migration name $file" >&2
        exit 1
    fi
    # One transaction: the lock, the check, the migration and its record.
    { echo "SELECT pg_advisory_xact_lock(7355608) AS locked \\gset"
      echo "SELECT count(*) AS applied FROM schema_migrations WHERE service = '$service' AND version = '$version' \\gset"
      echo "\\if :applied"
      echo "\\else"
      echo "\\o /dev/null" # what a migration's queries return (a setval) is not news
      cat "$file"
      echo
      echo "\\o"
      echo "INSERT INTO schema_migrations (service, version) VALUES ('$service', '$version');"
      echo "\\echo applied $service/$version"
      echo "\\endif"
    } | "${psql[@]}" --single-transaction
done
