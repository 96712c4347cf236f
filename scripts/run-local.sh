#!/usr/bin/env bash
# Serves the site for `make run`. With a real broker configured it also runs one Celery worker
# and the beat beside the web server, and stops them when the server stops.
set -euo pipefail
port="${1:-8000}"
py=.venv/bin/python
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

broker="${CELERY_BROKER_URL:-${REDIS_URL:-}}"
if [ -n "$broker" ] && [ "${broker#memory://}" = "$broker" ]; then
  echo "Broker $broker configured: starting a Celery worker and the beat."
  "$py" -m celery -A config worker --loglevel=INFO --concurrency=2 &
  pids+=("$!")
  mkdir -p "${VAR_DIR:-var}"
  "$py" -m celery -A config beat --loglevel=INFO --schedule="${VAR_DIR:-var}/celerybeat-schedule" &
  pids+=("$!")
else
  echo "No broker configured: tasks run in-process; mail is written to var/mail/."
fi
echo "Serving on http://localhost:${port}/"
"$py" manage.py runserver "0.0.0.0:${port}"
