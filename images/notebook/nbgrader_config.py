# System-wide nbgrader configuration of the swarmhub notebook images
# (/etc/jupyter/nbgrader_config.py; a user's ~/.jupyter/nbgrader_config.py or a course
# directory's nbgrader_config.py still override it).
#
# The hub sets, per notebook (see hub-deployer's jupyterhub_config.py):
#   NBGRADER_COURSE_ID      -> CourseDirectory.course_id
#   NBGRADER_EXCHANGE_ROOT  -> Exchange.root (where the exchange volume is mounted)
# The image sets SWARMHUB_ROLE (student or teacher); the hub sets the same value.
#
# Files must land on the persisted home volume, never in the container's own layer (a notebook
# service is removed when it stops). That directory is SWARMHUB_WORK_DIR when set, else ~/work
# when it exists (the hub's default storage.home_target /home/jovyan/work), else the home
# directory (storage.home_target = /home/jovyan):
#   students fetch assignments into it (Exchange.assignment_dir);
#   the teacher's course directory (CourseDirectory.root) is <work dir>/<course id>, or
#   NBGRADER_COURSE_ROOT when set.
import os

c = get_config()  # noqa: F821 (provided by the traitlets config loader)


def _work_dir():
    explicit = os.environ.get("SWARMHUB_WORK_DIR")
    if explicit:
        return explicit
    home = os.path.expanduser("~")
    work = os.path.join(home, "work")
    return work if os.path.isdir(work) else home


_course_id = os.environ.get("NBGRADER_COURSE_ID") or "course"
_work = _work_dir()

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
