# System-wide nbgrader configuration of the swarmhub notebook images
# (/etc/jupyter/nbgrader_config.py; a user's ~/.jupyter/nbgrader_config.py or a course
# directory's nbgrader_config.py still override it).
#
# The hub sets, per notebook (see hub-deployer's jupyterhub_config.py):
#   NBGRADER_COURSE_ID      -> CourseDirectory.course_id
#   NBGRADER_EXCHANGE_ROOT  -> Exchange.root (where the exchange volume is mounted; a mount of its
#                              own, never inside the home)
#   SWARMHUB_HOME_DIR       -> where the user's home volume is mounted (storage.home_target, the
#                              home directory /home/jovyan)
# The image sets SWARMHUB_ROLE (student or teacher); the hub sets the same value.
#
# nbgrader's files live in the work directory <home>/work, for new homes and for homes of
# swarmhub 0.x alike: 0.x mounted the home volume at ~/work, and nfsd moved such a volume's
# files into its work/ when it became the whole home, so fetched assignments and the teacher's
# course directory are where they were. The work directory is:
#   SWARMHUB_NBGRADER_DIR when set (an explicit choice),
#   else SWARMHUB_WORK_DIR when set (what a swarmhub 0.x hub sets: the volume's mount point),
#   else <SWARMHUB_HOME_DIR or ~>/work (the image's skeleton brings it; made when missing).
# Students fetch assignments into it (Exchange.assignment_dir); the teacher's course directory
# (CourseDirectory.root) is <work dir>/<course id>, or NBGRADER_COURSE_ROOT when set.
import os

c = get_config()  # noqa: F821 (provided by the traitlets config loader)


def _work_dir():
    for var in ("SWARMHUB_NBGRADER_DIR", "SWARMHUB_WORK_DIR"):
        explicit = os.environ.get(var)
        if explicit:
            return explicit
    home = os.environ.get("SWARMHUB_HOME_DIR") or os.path.expanduser("~")
    return os.path.join(home, "work")


_course_id = os.environ.get("NBGRADER_COURSE_ID") or "course"
_work = _work_dir()
try:
    os.makedirs(_work, exist_ok=True)
except OSError:
    pass

c.CourseDirectory.course_id = _course_id
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE_ROOT") or "/srv/nbgrader/exchange"
c.Exchange.assignment_dir = _work

if os.environ.get("SWARMHUB_ROLE") == "teacher":
    _root = os.environ.get("NBGRADER_COURSE_ROOT") or os.path.join(_work, _course_id)
    c.CourseDirectory.root = _root
    # formgrader and `nbgrader generate_assignment` expect the course directory to exist
    try:
        os.makedirs(os.path.join(_root, "source"), exist_ok=True)
    except OSError:
        pass
