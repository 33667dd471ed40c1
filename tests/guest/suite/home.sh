# swarmhub-nfsd only: identity and quota of a home volume, through the kernel client.
# (lib.sh is prepended.) Mount: $NFS_MNT = a home view with a quota of
# ${SUITE_QUOTA_MB:-100} MiB, client identity 1000:100.
# Leaves marker files id-* in the export root; the host then checks that all of them are
# owned on disk by the view's store uid/gid (tests/tests/kernel_client.rs).

QUOTA_MB=${SUITE_QUOTA_MB:-100}
cd "$NFS_MNT" || exit 1
grep -q '^other:' /etc/passwd || {
    echo 'other:x:4242:4242:other:/tmp:/bin/sh' >>/etc/passwd
    echo 'other:x:4242:' >>/etc/group
}
as() { # USER CMD: run a shell command as USER, cwd = the mount
    su -s /bin/sh "$1" -c "cd $NFS_MNT && $2"
}

# --- identity: whoever creates, the client sees 1000:100 ----------------------------
echo root >id-root.txt
must id-create-as-jovyan "echo > id-jovyan.txt as jovyan (1000)" as jovyan 'echo jovyan > id-jovyan.txt'
must id-create-as-other "echo > id-other.txt as other (4242)" as other 'echo other > id-other.txt'
must id-mkdir-as-jovyan "mkdir id-dir as jovyan" as jovyan 'mkdir id-dir && echo nested > id-dir/nested.txt'
ln -s id-root.txt id-symlink
mkdir id-root-dir
for f in id-root.txt id-jovyan.txt id-other.txt id-dir id-dir/nested.txt id-root-dir; do
    [ -e "$f" ] || continue
    check "id-owner-$f" "stat -c '%u %g' $f" "1000 100" "$(stat -c '%u %g' "$f")"
done
check "id-owner-id-symlink" "stat -c '%u %g' id-symlink (lstat)" "1000 100" "$(stat -c '%u %g' id-symlink)"
ls -ln >/tmp/ls-ln.out
echo "ls -ln:"; cat /tmp/ls-ln.out
bad=$(awk 'NR > 1 && $3 != 1000 || NR > 1 && $4 != 100' /tmp/ls-ln.out | tr '\n' ';')
check "id-ls-ln-all-1000-100" "ls -ln owner/group columns" "" "$bad"
check "id-root-dir-owner" "stat -c '%u %g' ." "1000 100" "$(stat -c '%u %g' .)"
# the view's files are the user's own: jovyan and other may write root's file
must id-write-as-jovyan "append to root's file as jovyan" as jovyan 'echo more >> id-root.txt' && pass id-write-as-jovyan
must id-chmod-as-other "chmod root's file as other (4242)" as other 'chmod 640 id-root.txt' && pass id-chmod-as-other
check id-chmod-as-other-mode "stat -c %a id-root.txt" 640 "$(stat -c %a id-root.txt)"
must id-chown-to-own-ids "chown 1000:100 id-other.txt" chown 1000:100 id-other.txt && pass id-chown-to-own-ids
try chown 0:0 id-other.txt
echo "info: chown 0:0 of a view file as root: exit $TRY_RC $TRY_ERR (owner now $(stat -c '%u:%g' id-other.txt))"
drop_caches
check "id-owner-after-drop-caches" "stat -c '%u %g' id-other.txt" "1000 100" "$(stat -c '%u %g' id-other.txt)"

# --- quota: df shows the volume size; writing past it fails with EDQUOT ----------------
df -kP "$NFS_MNT" | tail -n 1 >/tmp/df.out
echo "df: $(cat /tmp/df.out)"
total=$(awk '{print $(NF-4)}' /tmp/df.out)
used0=$(awk '{print $(NF-3)}' /tmp/df.out)
want=$((QUOTA_MB * 1024))
if [ "${total:-0}" -ge $((want * 95 / 100)) ] && [ "${total:-0}" -le "$want" ]; then pass quota-df-size
else fail quota-df-size "df -kP total (KiB)" "~$want (${QUOTA_MB}M)" "$total"; fi

# a sparse file far beyond the quota only allocates one block: allowed when the quota counts
# (conv=notrunc: a plain WRITE past EOF, no SETATTR size first)
# allocated blocks (as usage.rs says and as disk quotas do)
far=$(( (QUOTA_MB + 50) * 1024 * 1024 ))
must quota-sparse-write-beyond-limit "dd 16 bytes at offset $((QUOTA_MB + 50)) MiB" \
    dd if=/dev/zero of=q-sparse bs=16 count=1 seek=$((far / 16)) conv=notrunc,fsync && pass quota-sparse-write-beyond-limit
rm -f q-sparse

timed "quota-fill-$((QUOTA_MB + 20))MiB" try dd if=/dev/zero of=q-big bs=1048576 count=$((QUOTA_MB + 20)) conv=fsync
if [ "$TRY_RC" = 0 ]; then
    fail quota-exceeded "dd $((QUOTA_MB + 20)) MiB conv=fsync" "failure: Disk quota exceeded" "success (size $(stat -c %s q-big))"
elif echo "$TRY_ERR" | grep -qi 'quota'; then
    pass quota-exceeded
else
    fail quota-exceeded "dd $((QUOTA_MB + 20)) MiB conv=fsync" "failure: Disk quota exceeded" "exit $TRY_RC ($TRY_ERR)"
fi
echo "quota: q-big is $(stat -c %s q-big 2>/dev/null) bytes after the failed dd; df: $(df -kP "$NFS_MNT" | tail -n 1)"
must_fail quota-exceeded-again "dd 2 MiB conv=fsync while at the limit" 'quota' \
    dd if=/dev/zero of=q-more bs=1048576 count=2 conv=fsync
rm -f q-big q-more
sync
used1=$(df -kP "$NFS_MNT" | tail -n 1 | awk '{print $(NF-3)}')
if [ "${used1:-999999}" -le $((used0 + 1024)) ]; then pass quota-released-by-rm
else fail quota-released-by-rm "df -kP used after rm" "<= $((used0 + 1024)) KiB" "$used1 KiB"; fi
must quota-write-after-rm "dd 1 MiB conv=fsync after rm" dd if=/dev/zero of=q-after bs=1048576 count=1 conv=fsync \
    && pass quota-write-after-rm
rm -f q-after

suite_end
