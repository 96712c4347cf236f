#!/usr/bin/env bash
# Entry point of the image. One image, several roles, picked by the first argument:
#   web      wait for the database, then serve with gunicorn (docker/gunicorn.conf.py)
#   migrate  wait for the database, apply migrations, exit (run once per release, before web)
#   worker   Celery worker; extra arguments go to celery (e.g. --concurrency=8 -Q digests)
#   beat     Celery beat; run exactly one per deployment
#   manage   any manage.py command, e.g. `manage createsuperuser --noinput`
# Anything else is executed as given (e.g. `bash`).
set -euo pipefail

cd /app

wait_for_db() {
  local timeout="${DB_WAIT_SECONDS:-60}"
  python - "$timeout" <<'PY'
import sys
import time

import django

django.setup()
from django.db import connection
from django.db.utils import OperationalError

deadline = time.monotonic() + float(sys.argv[1])
while True:
    try:
        connection.ensure_connection()
        break
    except OperationalError as exc:
        if time.monotonic() > deadline:
            sys.exit(f"database not reachable: {exc}")
        print("waiting for the database ...", file=sys.stderr, flush=True)
        time.sleep(1)
PY
}

role="${1:-web}"
if [ "$#" -gt 0 ]; then
  shift
fi

case "$role" in
  web)
    wait_for_db
    exec gunicorn --config docker/gunicorn.conf.py config.wsgi:application "$@"
    ;;
  migrate)
    wait_for_db
    python manage.py migrate --noinput "$@"
    # Surface any deployment misconfiguration in the release step's log, without blocking it.
    python manage.py check --deploy || true
    ;;
  worker)
    wait_for_db
    exec celery --app config worker --loglevel "${LOG_LEVEL:-INFO}" "$@"
    ;;
  beat)
    # The schedule state lives in the container's tmp: beat recomputes due times on start,
    # and every periodic task is safe to run again.
    exec celery --app config beat --loglevel "${LOG_LEVEL:-INFO}" \
      --schedule /tmp/celerybeat-schedule "$@"
    ;;
  manage)
    exec python manage.py "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
