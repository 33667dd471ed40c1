#!/bin/sh
# Smoke test, run by busybox sh inside the guest with the export mounted at $NFS_MNT
# (cwd). Creates a file, writes, reads back, lists, and checks a few basics of the
# kernel client's view. Exit 0 = pass.
set -eu
fail() { echo "SMOKE FAIL: $*"; exit 1; }
cd "$NFS_MNT"
echo "smoke: mounted: $(grep " $NFS_MNT nfs" /proc/mounts)"

# create + write + read back
echo "hello from the guest kernel client" > smoke-hello.txt
[ "$(cat smoke-hello.txt)" = "hello from the guest kernel client" ] || fail "read back mismatch"

# a larger file through the page cache, flushed, re-read after dropping caches
dd if=/dev/urandom of=/tmp/blob bs=1024 count=2048 2>/dev/null
cp /tmp/blob smoke-blob.bin
sync
echo 3 > /proc/sys/vm/drop_caches
[ "$(md5sum < smoke-blob.bin)" = "$(md5sum < /tmp/blob)" ] || fail "2 MiB blob checksum mismatch"
[ "$(stat -c %s smoke-blob.bin)" = 2097152 ] || fail "blob size $(stat -c %s smoke-blob.bin)"

# directories, rename, append, listing
mkdir -p smoke-dir/sub
echo one > smoke-dir/sub/a
mv smoke-dir/sub/a smoke-dir/sub/b
echo two >> smoke-dir/sub/b
[ "$(cat smoke-dir/sub/b)" = "$(printf 'one\ntwo')" ] || fail "append/rename"
ls -la . smoke-dir/sub
ls smoke-dir/sub | grep -qx b || fail "listing"
rm -rf smoke-dir
[ ! -e smoke-dir ] || fail "rm -rf"

# leave a marker the host can check
date > smoke-from-guest.txt
echo "SMOKE PASS"
