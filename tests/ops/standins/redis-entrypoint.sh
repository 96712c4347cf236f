#!/bin/sh
# Like the official image: the server runs as redis and listens beyond loopback without a
# password inside the compose network (protected mode off).
set -eu
chown redis:redis /data
if [ "$1" = redis-server ]; then
  exec runuser -u redis -- "$@" --protected-mode no
fi
exec "$@"
