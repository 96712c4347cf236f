#!/usr/bin/env bash
# Entry point of the image. One image, several roles, picked by the first argument:
#   web      refuse a misconfigured deployment, wait for the database, then serve with gunicorn
#            (docker/gunicorn.conf.py)
#   migrate  refuse a misconfigured deployment, wait for the database, apply migrations, exit
#            (run once per release, before web)
#   worker   Celery worker; extra arguments go to celery (e.g. --concurrency=8 -Q digests).
#            The node name is set here (never -n/--hostname): the health check pings it.
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

# `check --deploy`: warnings go to the log, an error (e.g. newsletter.E001, an ESP without its
# webhook secret) stops the container before it migrates or serves anything.
deploy_check() {
  python manage.py check --deploy --fail-level ERROR
}

role="${1:-web}"
if [ "$#" -gt 0 ]; then
  shift
fi

# docker/healthcheck.sh runs in a process of its own and only sees the environment, not the
# command: tell it which role this container plays (files under /tmp, the one writable place
# besides var/).
echo "$role" >/tmp/container-role

case "$role" in
  web)
    deploy_check
    wait_for_db
    exec gunicorn --config docker/gunicorn.conf.py config.wsgi:application "$@"
    ;;
  migrate)
    deploy_check
    wait_for_db
    python manage.py migrate --noinput "$@"
    ;;
  worker)
    for arg in "$@"; do
      case "$arg" in
        -n | -n* | --hostname | --hostname=*)
          echo "entrypoint: the worker's node name is set by the image (for its health check); drop $arg" >&2
          exit 2
          ;;
      esac
    done
    # Unique per container even where all share one host name (host network, several workers
    # per machine), so the health check's ping is answered by this worker and no other. The
    # kernel's host name, not $HOSTNAME, which not every engine sets.
    node="worker-$(cut -c1-8 /proc/sys/kernel/random/uuid)@$(cat /proc/sys/kernel/hostname)"
    echo "$node" >/tmp/celery-node
    wait_for_db
    exec celery --app config worker --loglevel "${LOG_LEVEL:-INFO}" --hostname "$node" "$@"
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
