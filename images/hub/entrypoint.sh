#!/bin/sh
# Entrypoint of the swarmhub hub image: exports the hub's secrets from the files Docker mounts
# (never from service env settings, which every docker user can read), then runs its arguments
# (the service runs `jupyterhub --config /srv/jupyterhub/jupyterhub_config.py`).
#
#   JUPYTERHUB_CRYPT_KEY_FILE -> JUPYTERHUB_CRYPT_KEY (encrypts auth state)
#   JPY_COOKIE_SECRET_FILE    -> JPY_COOKIE_SECRET    (hex; JupyterHub prefers it over
#                                                      cookie_secret_file)
#
# A variable whose *_FILE is unset or empty is left as it is. A named file that is missing,
# unreadable or empty stops the container with exit code 64 and a message naming it.
set -eu

fail() {
  echo "swarmhub hub entrypoint: $*" >&2
  exit 64
}

# export_from_file VAR FILE_VAR
export_from_file() {
  eval "file=\${$2:-}"
  [ -n "$file" ] || return 0
  [ -e "$file" ] || fail "$2=$file: no such file (is the Docker secret attached to the hub service?)"
  [ -r "$file" ] || fail "$2=$file: cannot read it (permissions?)"
  value=$(cat "$file") || fail "$2=$file: cannot read it"
  [ -n "$value" ] || fail "$2=$file: the file is empty"
  export "$1=$value"
  unset value
}

export_from_file JUPYTERHUB_CRYPT_KEY JUPYTERHUB_CRYPT_KEY_FILE
export_from_file JPY_COOKIE_SECRET JPY_COOKIE_SECRET_FILE

[ $# -gt 0 ] || fail "no command given (the hub service runs: jupyterhub --config /srv/jupyterhub/jupyterhub_config.py)"
exec "$@"
