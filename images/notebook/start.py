#!/opt/venv/bin/python
"""swarmhub-notebook-start: give a new home its skeleton files, then run the notebook server.

The notebook images run it before their command (ENTRYPOINT tini -- swarmhub-notebook-start,
CMD jupyterhub-singleuser). The user's home directory ($HOME, /home/jovyan) is the user's home
volume, which starts empty; the image's skeleton (SWARMHUB_HOME_SKEL, default /etc/skel: .bashrc,
.profile, .bash_logout and whatever an image adds there) is copied into it.

- Never overwrites: an entry that exists in the home (a file, a directory, a symlink, even a
  broken one) is left as it is; files are created with O_EXCL, so a concurrent writer wins too.
- Never follows a symlink of the home: a directory of the skeleton is only entered in the home
  when the home has a real directory there.
- Works as the non-root user 1000:100 on an NFS or FUSE mount: it only creates entries, with the
  skeleton's permission bits, and never changes an owner.
- A failure to copy is logged (stderr: the entry and the cause) and never stops the server: the
  command runs whatever happened here.
"""

import os
import stat
import sys

PROG = "swarmhub-notebook-start"


def log(msg):
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def copy_file(src, dst, mode):
    """Copies regular file src to the new file dst (O_EXCL); False when dst exists."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(dst, flags, stat.S_IMODE(mode) | stat.S_IWUSR)
    except FileExistsError:
        return False
    try:
        with open(src, "rb") as s, os.fdopen(fd, "wb") as d:
            fd = None
            while True:
                chunk = s.read(1 << 16)
                if not chunk:
                    break
                d.write(chunk)
    finally:
        if fd is not None:
            os.close(fd)
    return True


def fill(skel, home, rel=""):
    """Copies what `home` lacks of `skel` (recursively); returns (copied, failed) entry lists."""
    copied, failed = [], []
    src_dir = os.path.join(skel, rel)
    try:
        names = sorted(os.listdir(src_dir))
    except OSError as e:
        failed.append((rel or ".", f"cannot list the skeleton {src_dir}: {e.strerror or e}"))
        return copied, failed
    for name in names:
        entry = os.path.join(rel, name)
        src = os.path.join(skel, entry)
        dst = os.path.join(home, entry)
        try:
            st = os.lstat(src)
            try:
                have = os.lstat(dst)
            except FileNotFoundError:
                have = None
            if stat.S_ISDIR(st.st_mode):
                if have is None:
                    os.mkdir(dst, stat.S_IMODE(st.st_mode) | stat.S_IRWXU)
                    copied.append(entry + "/")
                elif not stat.S_ISDIR(have.st_mode):
                    continue  # the user has something else there: theirs
                c, f = fill(skel, home, entry)
                copied += c
                failed += f
            elif have is not None:
                continue
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), dst)
                copied.append(entry)
            elif stat.S_ISREG(st.st_mode):
                if copy_file(src, dst, st.st_mode):
                    copied.append(entry)
            # sockets, FIFOs and devices of a skeleton are not copied
        except FileExistsError:
            continue
        except OSError as e:
            failed.append((entry, e.strerror or str(e)))
    return copied, failed


def main(argv):
    if len(argv) < 2:
        log("usage: swarmhub-notebook-start COMMAND [ARG...]")
        return 2
    home = os.environ.get("HOME") or os.path.expanduser("~")
    skel = os.environ.get("SWARMHUB_HOME_SKEL", "/etc/skel")
    try:
        if not os.path.isdir(skel):
            log(f"no skeleton directory {skel}; nothing copied into {home}")
        elif not os.path.isdir(home):
            log(f"the home directory {home} is not a directory; skeleton not copied")
        else:
            copied, failed = fill(skel, home)
            if copied:
                log(f"copied into {home} from {skel}: {', '.join(copied)}")
            for entry, why in failed:
                log(
                    f"cannot copy {os.path.join(skel, entry)} to {os.path.join(home, entry)}:"
                    f" {why}; the server starts without it"
                )
    except Exception as e:  # never keep the server from starting
        log(f"copying the skeleton {skel} into {home} failed: {e!r}; the server starts anyway")
    try:
        os.execvp(argv[1], argv[1:])
    except OSError as e:
        log(f"cannot run {argv[1]}: {e.strerror or e}")
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv))
