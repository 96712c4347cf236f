#!/usr/bin/env bash
# The image's HEALTHCHECK, one command for every role; docker/entrypoint.sh records the role.
#   web      GET /healthz on the port gunicorn binds ($PORT, the same default as gunicorn.conf.py)
#   worker   `celery inspect ping` to this container's own node, through the broker: proves the
#            worker is alive and consuming, not just that some worker somewhere answers
#   beat     the schedule file was written lately: beat writes it back every 3 minutes while it
#            sends the periodic tasks (every 30-60 s here), so an old file means a stuck beat
#   other    (migrate, manage, a shell) nothing long-running to watch
set -euo pipefail

# CONTAINER_ROLE_FILE only for running this script outside the image (tests/ops/test_gunicorn.py).
role="$(cat "${CONTAINER_ROLE_FILE:-/tmp/container-role}" 2>/dev/null || true)"

case "$role" in
  web)
    exec python - <<'PY'
import os
import urllib.request

port = os.environ.get("PORT", "").strip() or "8000"
urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
PY
    ;;
  worker)
    cd /app
    exec celery --app config inspect ping --destination "$(cat /tmp/celery-node)" \
      --timeout "${WORKER_HEALTH_PING_SECONDS:-10}"
    ;;
  beat)
    max_age="${BEAT_HEALTH_MAX_AGE_SECONDS:-600}"
    newest=0
    for file in /tmp/celerybeat-schedule*; do
      [ -e "$file" ] || continue
      mtime="$(stat -c %Y "$file")"
      if [ "$mtime" -gt "$newest" ]; then
        newest="$mtime"
      fi
    done
    age=$(($(date +%s) - newest))
    if [ "$age" -gt "$max_age" ]; then
      echo "beat schedule not written for ${age}s (limit ${max_age}s)" >&2
      exit 1
    fi
    ;;
  *)
    exit 0
    ;;
esac
