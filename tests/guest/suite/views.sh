# swarmhub-nfsd only: two views of one shared tree in one guest. (lib.sh is prepended.)
#   $NFS_MNT  = the teacher's view (store ids $SUITE_T_UID:$SUITE_T_GID)
#   $NFS_MNT2 = a student's view   (store ids $SUITE_S_UID:$SUITE_S_GID)
# Both present their own files as 1000:100. The share's root belongs to nfsd: the host made
# course101/ (the teacher's, 0755) and scratch/ (the teacher's, 1777) through nfsd's API
# before the guest started. Leaves scratch/conc-*.log and course101/ for the host to check
# on-disk owners (tests/tests/kernel_client.rs).

T_UID=${SUITE_T_UID:-30001}
S_UID=${SUITE_S_UID:-30002}
LINES=${SUITE_CONC_LINES:-400}
T=$NFS_MNT
S=$NFS_MNT2
[ -n "$S" ] || { echo "FAIL setup: NFS_MNT2, expected a second mount (--export2), got none"; exit 1; }
cd /

dt=$(stat -c %d "$T"); ds=$(stat -c %d "$S")
if [ "$dt" != "$ds" ]; then pass views-distinct-superblocks
else fail views-distinct-superblocks "stat -c %d of both mounts" "different devices" "both $dt"; fi

# --- concurrent appends from both views ------------------------------------------------
writer() { # FILE PREFIX
    i=0
    while [ $i -lt "$LINES" ]; do
        echo "$2$i" >>"$1" || { echo "WRITER-ERROR $1 line $i"; return 1; }
        i=$((i + 1))
    done
}
a=$(uptime_s)
writer "$T/scratch/conc-t.log" t >/tmp/wt.out 2>&1 &
pt=$!
writer "$S/scratch/conc-s.log" s >/tmp/ws.out 2>&1 &
ps=$!
wait $pt; rt=$?
wait $ps; rs=$?
echo "TIME concurrent-appends-2x$LINES $(awk -v a="$a" -v b="$(uptime_s)" 'BEGIN{printf "%.2f", b-a}')" >&2
check conc-writer-teacher "writer exit status (output: $(tr '\n' ' ' </tmp/wt.out))" 0 "$rt"
check conc-writer-student "writer exit status (output: $(tr '\n' ' ' </tmp/ws.out))" 0 "$rs"
i=0; while [ $i -lt "$LINES" ]; do echo "t$i"; i=$((i + 1)); done >/tmp/exp-t
i=0; while [ $i -lt "$LINES" ]; do echo "s$i"; i=$((i + 1)); done >/tmp/exp-s
drop_caches
check conc-teacher-file-complete "md5sum of conc-t.log ($(wc -l <"$T/scratch/conc-t.log") lines) via teacher view" \
    "$(md5sum </tmp/exp-t)" "$(md5sum <"$T/scratch/conc-t.log")"
check conc-student-file-complete "md5sum of conc-s.log ($(wc -l <"$S/scratch/conc-s.log") lines) via student view" \
    "$(md5sum </tmp/exp-s)" "$(md5sum <"$S/scratch/conc-s.log")"
check conc-teacher-reads-student-file "md5sum of conc-s.log via teacher view" "$(md5sum </tmp/exp-s)" "$(md5sum <"$T/scratch/conc-s.log")"
check conc-student-reads-teacher-file "md5sum of conc-t.log via student view" "$(md5sum </tmp/exp-t)" "$(md5sum <"$S/scratch/conc-t.log")"
check owner-own-file-teacher "stat -c %u $T/conc-t.log" 1000 "$(stat -c %u "$T/scratch/conc-t.log")"
check owner-own-file-student "stat -c %u $S/conc-s.log" 1000 "$(stat -c %u "$S/scratch/conc-s.log")"
check owner-other-file-in-teacher-view "stat -c %u $T/conc-s.log" "$S_UID" "$(stat -c %u "$T/scratch/conc-s.log")"
check owner-other-file-in-student-view "stat -c %u $S/conc-t.log" "$T_UID" "$(stat -c %u "$S/scratch/conc-t.log")"
echo "teacher view:"; ls -ln "$T"
echo "student view:"; ls -ln "$S"

# --- the share's root belongs to nfsd ------------------------------------------------------
check root-presented-1777 "stat -c %a of the exchange root (student view)" 1777 "$(stat -c %a "$S")"
must_fail root-student-cannot-squat "mkdir squat at the root (student)" 'permission denied' mkdir "$S/squat"
must_fail root-teacher-cannot-mkdir "mkdir course102 at the root (teacher)" 'permission denied' mkdir "$T/course102"
must_fail root-student-cannot-create "create a file at the root (student)" 'permission denied' \
    sh -c "echo x > '$S/planted'"
must_fail root-student-cannot-rename-course "mv course101 (student)" 'permission denied|not permitted' mv "$S/course101" "$S/c"
must_fail share-no-symlink "ln -s in scratch (student)" 'permission denied' ln -s /etc/passwd "$S/scratch/link"
must_fail share-no-fifo "mkfifo in scratch (student)" 'permission denied' mkfifo "$S/scratch/fifo"
must_fail share-no-hardlink "ln in scratch (student)" 'permission denied' ln "$S/scratch/conc-s.log" "$S/scratch/hard"

# --- nbgrader exchange permissions ---------------------------------------------------------
C=course101
check nb-course-mode "stat -c %a $C (teacher view)" 755 "$(stat -c %a "$T/$C")"
check nb-course-owner "stat -c %u $C (teacher view)" 1000 "$(stat -c %u "$T/$C")"
mkdir "$T/$C/inbound" "$T/$C/outbound" "$T/$C/feedback"
chmod 2733 "$T/$C/inbound"
chmod 755 "$T/$C/outbound"
chmod 711 "$T/$C/feedback"
check nb-inbound-mode-teacher "stat -c %a $C/inbound (teacher view)" 2733 "$(stat -c %a "$T/$C/inbound")"
check nb-inbound-mode-student "stat -c %a $C/inbound (student view)" 2733 "$(stat -c %a "$S/$C/inbound")"
check nb-inbound-owner-student "stat -c %u $C/inbound (student view)" "$T_UID" "$(stat -c %u "$S/$C/inbound")"
mkdir -p "$T/$C/outbound/ps1" && echo '{"cells": []}' >"$T/$C/outbound/ps1/ps1.ipynb"
check nb-student-reads-outbound "cat outbound/ps1/ps1.ipynb (student)" '{"cells": []}' "$(cat "$S/$C/outbound/ps1/ps1.ipynb")"
must_fail nb-student-cannot-write-outbound "append to outbound/ps1/ps1.ipynb (student)" 'permission denied' \
    sh -c "echo x >> '$S/$C/outbound/ps1/ps1.ipynb'"
must_fail nb-student-cannot-create-in-outbound "create outbound/evil (student)" 'permission denied' \
    sh -c "echo x > '$S/$C/outbound/evil'"
must_fail nb-student-cannot-delete-outbound "rm outbound/ps1/ps1.ipynb (student)" 'permission denied' \
    rm -f "$S/$C/outbound/ps1/ps1.ipynb"
SUB="student1+ps1+2024-01-01 10:00:00.000000 UTC+abcd1234"
if must nb-student-submits "mkdir inbound/$SUB (student)" mkdir "$S/$C/inbound/$SUB"; then
    must nb-student-writes-submission "write ps1.ipynb into the submission (student)" \
        sh -c "echo submitted > '$S/$C/inbound/$SUB/ps1.ipynb'" && pass nb-student-submits
    check nb-submission-owner-student-view "stat -c %u (student's own submission)" 1000 "$(stat -c %u "$S/$C/inbound/$SUB")"
fi
must_fail nb-student-cannot-list-inbound "ls inbound (student)" 'permission denied' ls "$S/$C/inbound"
check nb-student-lists-own-submission "ls inbound/<sub> (student)" ps1.ipynb "$(ls "$S/$C/inbound/$SUB" 2>&1)"
check nb-teacher-lists-inbound "ls inbound (teacher)" "$SUB" "$(ls "$T/$C/inbound" 2>&1)"
check nb-teacher-reads-submission "cat inbound/<sub>/ps1.ipynb (teacher)" submitted "$(cat "$T/$C/inbound/$SUB/ps1.ipynb" 2>&1)"
check nb-teacher-sees-student-owner "stat -c %u inbound/<sub> (teacher)" "$S_UID" "$(stat -c %u "$T/$C/inbound/$SUB")"
must_fail nb-student-cannot-list-feedback "ls feedback (student, 0711)" 'permission denied' ls "$S/$C/feedback"

suite_end
