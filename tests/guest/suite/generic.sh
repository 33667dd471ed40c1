# Generic NFSv3 conformance through the Linux kernel client: must pass against
# nfs-ganesha AND swarmhub-nfsd. Runs as root in the guest, in $NFS_MNT/generic.
# (lib.sh is prepended.)
# Env: SUITE_BIG_DIR (entries in the big directory, default 5000).

BIG=${SUITE_BIG_DIR:-5000}
W="$NFS_MNT/generic"
rm -rf "$W" 2>/dev/null
mkdir "$W" || { echo "FAIL setup: mkdir $W, expected success, got failure"; exit 1; }
cd "$W" || exit 1

# --- create / write / read / append ---------------------------------------------
echo hello >f1
check create-write-read "cat f1" "hello" "$(cat f1)"
echo world >>f1
check append "cat f1 after >>" "$(printf 'hello\nworld')" "$(cat f1)"
drop_caches
check read-after-drop-caches "cat f1" "$(printf 'hello\nworld')" "$(cat f1)"
check size "stat -c %s f1" 12 "$(stat -c %s f1)"
: >empty
check create-empty "stat -c %s empty" 0 "$(stat -c %s empty)"

# overwrite with shell > (O_TRUNC)
echo short >f1
check truncate-by-redirect "cat f1 after >" "short" "$(cat f1)"
check truncate-by-redirect-size "stat -c %s f1" 6 "$(stat -c %s f1)"

# 1 MiB of random data through the page cache
dd if=/dev/urandom of=/tmp/blob bs=65536 count=16 2>/dev/null
cp /tmp/blob blob && sync
drop_caches
check write-1MiB-readback "md5sum blob" "$(md5sum </tmp/blob)" "$(md5sum <blob)"

# truncate(1): shrink, then extend (the extension reads back as zeros)
printf 'abcdefghij' >t
if must truncate-shrink "truncate -s 4 t" truncate -s 4 t; then
    check truncate-shrink "cat t" "abcd" "$(cat t)"
fi
if must truncate-extend "truncate -s 8192 t" truncate -s 8192 t; then
    drop_caches
    check truncate-extend "stat -c %s t" 8192 "$(stat -c %s t)"
    check truncate-extend-zeros "od of bytes 4..8191" "$(printf 'abcd' | od -An -c | tr -s ' ')" "$(head -c 4 t | od -An -c | tr -s ' ')"
    check truncate-extend-hole "non-zero bytes after offset 4" 0 "$(tail -c 8188 t | tr -d '\0' | wc -c)"
fi

# exclusive create (O_EXCL -> NFS3 CREATE EXCLUSIVE + SETATTR)
if must excl-create "set -C; echo x > excl" sh -c 'set -C; echo x > excl'; then
    check excl-create "cat excl" x "$(cat excl)"
    check excl-create-mode "stat -c %a excl" 644 "$(stat -c %a excl)"
fi
must_fail excl-create-existing "set -C; echo y > excl (exists)" 'exists' sh -c 'set -C; echo y > excl'

# --- rename ----------------------------------------------------------------------
echo A >ra
mv ra rb
if [ -e ra ]; then fail rename "mv ra rb; test -e ra" "ra gone" "ra still exists"
else check rename "cat rb" A "$(cat rb)"; fi
echo B >rc
mv rb rc
check rename-over-existing "cat rc after mv rb rc" A "$(cat rc)"
[ -e rb ] && fail rename-over-existing-source "test -e rb" "rb gone" "rb exists"
mkdir d1 d2
echo C >d1/x
mv d1/x d2/y
check rename-across-dirs "cat d2/y" C "$(cat d2/y)"
check rename-across-dirs-source "ls d1 | wc -l" 0 "$(ls d1 | wc -l)"
echo D >d1/z
mv d1 d3
check rename-dir "cat d3/z" D "$(cat d3/z)"
mkdir d4
mv d3 d4/
check rename-dir-into-dir "cat d4/d3/z" D "$(cat d4/d3/z)"
mkdir emptyd
mv d2 emptyd 2>/dev/null # moves d2 INTO emptyd (coreutils semantics)
check rename-dir-into-empty-dir "cat emptyd/d2/y" C "$(cat emptyd/d2/y)"

# rename of a directory onto an empty directory replaces it; onto a non-empty one fails
mkdir rd-src rd-empty rd-full && echo f >rd-src/f && echo g >rd-full/g
if must rename-dir-over-empty-dir "rename(rd-src, rd-empty)" mv -T rd-src rd-empty; then
    check rename-dir-over-empty-dir "cat rd-empty/f" f "$(cat rd-empty/f)"
fi
must_fail rename-dir-over-nonempty-dir "rename(rd-empty, rd-full)" 'not empty|exists' mv -T rd-empty rd-full

# --- unlink ------------------------------------------------------------------------
echo gone >u
rm u
if [ -e u ]; then fail unlink "rm u; test -e u" "absent" "present"; else pass unlink; fi
must_fail unlink-missing "rm nonexistent" 'no such file' rm nonexistent
must_fail read-missing "cat nonexistent" 'no such file' cat nonexistent
# unlink while open: data stays readable through the open fd (sillyrename)
echo still-here >open-unlinked
exec 7<open-unlinked
rm open-unlinked
check unlink-open-file "read from fd after rm" still-here "$(cat <&7)"
exec 7<&-

# --- mkdir / rmdir -------------------------------------------------------------------
if must mkdir "mkdir md" mkdir md; then
    check mkdir-isdir "stat -c %F md" "directory" "$(stat -c %F md)"
fi
must_fail mkdir-existing "mkdir md (exists)" 'exists' mkdir md
must mkdir-p "mkdir -p md/a/b/c" mkdir -p md/a/b/c && pass mkdir-p
must_fail rmdir-nonempty "rmdir md (not empty)" 'not empty' rmdir md
if must rmdir "rmdir md/a/b/c" rmdir md/a/b/c; then
    if [ -e md/a/b/c ]; then fail rmdir "test -e md/a/b/c" absent present; else pass rmdir; fi
fi
must rm-rf "rm -rf md" rm -rf md && { [ -e md ] && fail rm-rf "test -e md" absent present || pass rm-rf; }

# --- symlink / readlink ----------------------------------------------------------------
echo target-content >tgt
if must symlink "ln -s tgt lnk" ln -s tgt lnk; then
    check readlink "readlink lnk" tgt "$(readlink lnk)"
    check symlink-follow "cat lnk" target-content "$(cat lnk)"
    check symlink-type "stat -c %F lnk" "symbolic link" "$(stat -c %F lnk)"
fi
if must symlink-dangling "ln -s /no/such/path dangling" ln -s /no/such/path dangling; then
    drop_caches
    check readlink-dangling "readlink dangling" /no/such/path "$(readlink dangling)"
fi
long=$(printf '%0200d' 0 | tr 0 x)
ln -s "$long" lnk-long 2>/dev/null
check readlink-200-chars "readlink lnk-long | wc -c" 201 "$(readlink lnk-long | wc -c)"

# --- special files (MKNOD) ---------------------------------------------------------------
if must mkfifo "mkfifo fifo" mkfifo fifo; then
    check mkfifo-type "stat -c %F fifo" fifo "$(stat -c %F fifo)"
    (echo through-the-fifo >fifo &)
    check mkfifo-io "read from fifo" through-the-fifo "$(cat fifo)"
    rm -f fifo
fi

# --- chmod / touch -d -------------------------------------------------------------------
echo m >modef
chmod 640 modef
check chmod "stat -c %a" 640 "$(stat -c %a modef)"
chmod 4755 modef
drop_caches
check chmod-setuid "stat -c %a" 4755 "$(stat -c %a modef)"
mkdir sgid && chmod 2775 sgid
check chmod-setgid-dir "stat -c %a sgid" 2775 "$(stat -c %a sgid)"
chmod 1777 sgid
check chmod-sticky-dir "stat -c %a sgid" 1777 "$(stat -c %a sgid)"
echo t >tf
touch -d '2001-02-03 04:05:06' tf
check touch-d "stat -c %Y tf" 981173106 "$(stat -c %Y tf)"
drop_caches
check touch-d-after-drop-caches "stat -c %Y tf" 981173106 "$(stat -c %Y tf)"
touch -d '2001-02-03 04:05:06' newly-touched
check touch-d-create "stat -c %Y newly-touched" 981173106 "$(stat -c %Y newly-touched)"
before=$(stat -c %Y tf)
echo more >>tf
after=$(stat -c %Y tf)
if [ "$after" -gt "$before" ]; then pass mtime-advances-on-write
else fail mtime-advances-on-write "stat -c %Y after append" "> $before" "$after"; fi

# --- hard link -------------------------------------------------------------------------------
echo linked >hl
if must hardlink "ln hl hl2" ln hl hl2; then
    check hardlink-nlink "stat -c %h hl" 2 "$(stat -c %h hl)"
    check hardlink-same-inode "stat -c %i hl2" "$(stat -c %i hl)" "$(stat -c %i hl2)"
    echo appended >>hl2
    drop_caches
    check hardlink-shared-data "cat hl" "$(printf 'linked\nappended')" "$(cat hl)"
    rm hl2
    check hardlink-nlink-after-unlink "stat -c %h hl" 1 "$(stat -c %h hl)"
fi

# --- a directory of $BIG entries ---------------------------------------------------------------
mkdir big
cd big
mk_big() {
    i=0
    while [ $i -lt "$BIG" ]; do : >"f$i" || return 1; i=$((i + 1)); done
}
timed "create-$BIG-files" mk_big || fail "bigdir-create" "create f$i" success failure
cd "$W"
drop_caches
timed "ls-$BIG" ls big >/tmp/ls.out
check "bigdir-ls-count" "ls big | wc -l" "$BIG" "$(wc -l </tmp/ls.out)"
check "bigdir-ls-unique" "ls big | sort | uniq -d | wc -l" 0 "$(sort /tmp/ls.out | uniq -d | wc -l)"
expected_names=$(i=0; while [ $i -lt "$BIG" ]; do echo "f$i"; i=$((i + 1)); done | sort | md5sum)
check "bigdir-ls-names" "ls big | sort | md5sum" "$expected_names" "$(sort /tmp/ls.out | md5sum)"
drop_caches
timed "find-$BIG" find big -type f >/tmp/find.out
check "bigdir-find-count" "find big -type f | wc -l" "$BIG" "$(wc -l </tmp/find.out)"
check "bigdir-find-unique" "find | sort | uniq -d | wc -l" 0 "$(sort /tmp/find.out | uniq -d | wc -l)"
drop_caches
timed "ls-l-$BIG" ls -l big >/tmp/lsl.out # READDIRPLUS + attributes
check "bigdir-ls-l-count" "ls -l big | grep -c '^-'" "$BIG" "$(grep -c '^-' /tmp/lsl.out)"
# delete a third while listing (cookies stay valid across removals in the same dir)
i=0; while [ $i -lt "$BIG" ]; do rm -f "big/f$i"; i=$((i + 3)); done
drop_caches
remain=$((BIG - (BIG + 2) / 3))
check "bigdir-after-removals" "ls big | wc -l" "$remain" "$(ls big | wc -l)"
check "bigdir-after-removals-unique" "ls big | sort | uniq -d | wc -l" 0 "$(ls big | sort | uniq -d | wc -l)"
timed "rm-rf-big" rm -rf big
if [ -e big ]; then fail bigdir-rm-rf "test -e big" absent present; else pass bigdir-rm-rf; fi

# --- sparse file beyond 4 GiB ------------------------------------------------------------------
far=$((5 * 1024 * 1024 * 1024 + 12345)) # 5 GiB + 12345
printf 'FAR-AWAY-PAYLOAD' >/tmp/payload
if must sparse-write "dd seek=$far" dd if=/tmp/payload of=sparse bs=1 seek=$far conv=notrunc; then
    printf 'NEAR' | dd of=sparse bs=1 seek=100 conv=notrunc 2>/dev/null
    sync
    drop_caches
    check sparse-size "stat -c %s sparse" $((far + 16)) "$(stat -c %s sparse)"
    check sparse-far-content "dd skip=$far" FAR-AWAY-PAYLOAD "$(dd if=sparse bs=1 skip=$far count=16 2>/dev/null)"
    check sparse-near-content "dd skip=100" NEAR "$(dd if=sparse bs=1 skip=100 count=4 2>/dev/null)"
    check sparse-hole-zeros "non-zero bytes in [4 GiB, 4 GiB+64 KiB)" 0 \
        "$(dd if=sparse bs=65536 skip=65536 count=1 2>/dev/null | tr -d '\0' | wc -c)"
    blocks_kb=$(( $(stat -c %b sparse) * $(stat -c %B sparse) / 1024 ))
    if [ "$blocks_kb" -lt 10240 ]; then pass sparse-allocated-small
    else fail sparse-allocated-small "stat -c %b*%B / 1024" "< 10240 KiB allocated" "$blocks_kb KiB"; fi
    # truncate back below 4 GiB
    truncate -s 200 sparse
    check sparse-truncate "stat -c %s sparse" 200 "$(stat -c %s sparse)"
    rm -f sparse
fi

# --- df ------------------------------------------------------------------------------------------
if must df "df -kP $NFS_MNT" df -kP "$NFS_MNT"; then
    line=$(echo "$TRY_OUT" | tail -n 1)
    # parse from the right: a long server:/path may contain anything
    total=$(echo "$line" | awk '{print $(NF-4)}')
    avail=$(echo "$line" | awk '{print $(NF-2)}')
    echo "df: $line"
    if [ "${total:-0}" -gt 0 ] 2>/dev/null && [ "${avail:-0}" -gt 0 ] 2>/dev/null; then pass df-sizes
    else fail df-sizes "df -kP total/avail" "> 0" "total=$total avail=$avail"; fi
fi
must statfs "stat -f" stat -f -c '%b %f %c' "$NFS_MNT" && pass statfs

cd "$NFS_MNT"
rm -rf "$W"
suite_end
