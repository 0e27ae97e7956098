#!/bin/sh
# Out-of-tree consumers: `make install` into a temporary DESTDIR, then follow
# docs/PLUGINS.md as written: its build commands (the ```sh block) on the
# scheme template plugins/template/myscheme.c, and on the guide's own code
# (its ```c blocks in order); build a program with nothing but pkg-config
# and run both.  Speaks TAP.
set -u
echo "1..5"
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
export PKG_CONFIG_PATH=$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest LD_LIBRARY_PATH=$libdir
PATH=$dest$PE_TEST_BINDIR:$PATH
guide=$PE_TEST_SRCDIR/docs/PLUGINS.md
# The guide's `cc` is the compiler this tree was configured with.
cat >"$tmp/cc" <<EOS
#!/bin/sh
exec ${PE_TEST_CC:-cc} ${PE_TEST_CFLAGS:-} "\$@" ${PE_TEST_LDFLAGS:-}
EOS
chmod +x "$tmp/cc"
PATH=$tmp:$PATH
export PATH
awk '/^```sh$/ { on = 1; next } /^```$/ { if (on) exit } on' "$guide" >"$tmp/guide.sh"

# follow DIR: run the guide's commands in DIR, which holds myscheme.c; ok
# when pe-bench lists the plugin built there.
follow() {
  (cd "$1" && sh -e "$tmp/guide.sh") >"$tmp/log" 2>&1 && grep -q "^      $1/myscheme.so\$" "$tmp/log"
}
mkdir "$tmp/template" "$tmp/snippets"
cp "$PE_TEST_SRCDIR/plugins/template/myscheme.c" "$tmp/template/"
if [ -s "$tmp/guide.sh" ] && follow "$tmp/template"; then
  ok 2 "plugins/template/myscheme.c builds with PLUGINS.md's commands as written, and is listed"
else
  notok 2 "plugins/template/myscheme.c builds with PLUGINS.md's commands as written, and is listed"
fi
awk '/^```c$/ { on = 1; next } /^```$/ { on = 0 } on' "$guide" >"$tmp/snippets/myscheme.c"
if follow "$tmp/snippets"; then
  ok 3 "PLUGINS.md's code, taken in order, is a plugin that builds the same way"
else
  notok 3 "PLUGINS.md's code, taken in order, is a plugin that builds the same way"
fi

# shellcheck disable=SC2046,SC2086
if ${PE_TEST_CC:-cc} ${PE_TEST_CFLAGS:-} -std=c11 $(pkg-config --cflags libpe) -o "$tmp/consumer" \
     "$PE_TEST_SRCDIR/tests/consumer/consumer.c" ${PE_TEST_LDFLAGS:-} $(pkg-config --libs libpe) \
     >"$tmp/log" 2>&1; then
  ok 4 "consumer built with pkg-config only"
else
  notok 4 "consumer built with pkg-config only"; exit 0
fi
if PE_PLUGIN_PATH=$tmp/template:$dest$PE_TEST_PLUGINDIR "$tmp/consumer" >"$tmp/log" 2>&1 &&
   grep -q "^rope: ok" "$tmp/log" && grep -q "^myscheme: ok.*base 2 on 8 dims" "$tmp/log" &&
   grep -q "^libpe: warning: myscheme: base = 2: the slowest pair turns every 11 positions" "$tmp/log"; then
  ok 5 "consumer runs rope and the template, which warns through the host"
else
  notok 5 "consumer runs rope and the template, which warns through the host"
fi
