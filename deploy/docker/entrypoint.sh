#!/bin/sh
# Start one artdag service by name, or run an artdag command (e.g. `migrate`).
set -eu

usage() {
  echo "usage: SERVICE | migrate | artdag ARGS…" >&2
  echo "  SERVICE: gateway, auth, planner, analyzer, executor or cache" >&2
  exit 64
}

[ $# -ge 1 ] || usage
name=$1
shift
case "$name" in
  gateway | auth | planner | analyzer | executor | cache)
    # exec: the service is PID 1 and gets SIGTERM itself (it drains its work, then exits).
    exec python -m "services.$name" "$@"
    ;;
  migrate)
    exec artdag migrate "$@"
    ;;
  artdag)
    exec artdag "$@"
    ;;
  *)
    usage
    ;;
esac
