#!/bin/sh
# Out-of-tree consumers: `make install` into a temporary DESTDIR, then build
# a program and a scheme plugin with nothing but pkg-config, and run them.
# Speaks TAP.
set -u
echo "1..3"
tmp=$(mktemp -d /tmp/pe-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
ok() { echo "ok $1 - $2"; }
notok() { echo "not ok $1 - $2"; sed 's/^/# /' "$tmp/log"; }

if ${MAKE:-make} -C "$PE_TEST_BUILDDIR" install DESTDIR="$dest" >"$tmp/log" 2>&1; then
  ok 1 "make install DESTDIR"
else
  notok 1 "make install DESTDIR"; exit 0
fi
libdir=$dest$PE_TEST_LIBDIR
export PKG_CONFIG_PATH=$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
cc=${PE_TEST_CC:-cc}
src=$PE_TEST_SRCDIR/tests/consumer
# shellcheck disable=SC2046,SC2086
if $cc ${PE_TEST_CFLAGS:-} -std=c11 -fPIC -shared -fvisibility=hidden $(pkg-config --cflags libpe) \
     -o "$tmp/halfrope.so" "$src/halfrope.c" ${PE_TEST_LDFLAGS:-} -lm >"$tmp/log" 2>&1 &&
   $cc ${PE_TEST_CFLAGS:-} -std=c11 $(pkg-config --cflags libpe) -o "$tmp/consumer" "$src/consumer.c" \
     ${PE_TEST_LDFLAGS:-} $(pkg-config --libs libpe) >>"$tmp/log" 2>&1; then
  ok 2 "consumer and plugin built with pkg-config only"
else
  notok 2 "consumer and plugin built with pkg-config only"; exit 0
fi
if LD_LIBRARY_PATH=$libdir PE_PLUGIN_PATH=$tmp:$dest$PE_TEST_PLUGINDIR "$tmp/consumer" >"$tmp/log" 2>&1 &&
   grep -q "^rope: ok" "$tmp/log" && grep -q "^halfrope: ok.*base 100000 on 8 dims" "$tmp/log"; then
  ok 3 "consumer runs rope and the out-of-tree halfrope plugin"
else
  notok 3 "consumer runs rope and the out-of-tree halfrope plugin"
fi
