#!/bin/sh
# Run one test under the TAP driver.  Criterion programs get --tap (TAP on
# stdout, one line per test); shell tests speak TAP themselves.
mkdir -p "${PE_CACHE_DIR:-/tmp}" "${POCL_CACHE_DIR:-/tmp}" 2>/dev/null
case "$1" in
  *.sh) exec "$@" ;;
  *) exec "$@" --tap=- ;;
esac
