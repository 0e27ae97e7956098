#!/bin/sh
# Regenerate the build system.  Automake does not install tap-driver.sh
# with --add-missing, so copy it from automake's data directory.
set -e
cd "$(dirname "$0")"
mkdir -p build-aux m4
am_dir=$(automake --print-libdir)
cp -f "$am_dir/tap-driver.sh" build-aux/tap-driver.sh
chmod +x build-aux/tap-driver.sh
autoreconf --install --force
