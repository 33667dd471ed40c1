#!/bin/sh
# Entrypoint of swarmhub/demo-ldap: the directory of `swarmhub demo up`, not for production.
#
# Starts OpenLDAP's slapd on ldap:/// (port 389) with one MDB database under $DEMO_LDAP_BASE_DN,
# loaded at every start from the LDIF file $DEMO_LDAP_SEED_FILE (a Docker secret written by
# `swarmhub demo up`: people with posixAccount uid/gid numbers and their groups). userPassword
# values in the seed are plain text; they are hashed ({SSHA}) before loading. Anyone may read
# entries (nfsd and the hub search anonymously); passwords can only be used to bind.
set -eu

SEED=${DEMO_LDAP_SEED_FILE:-/run/secrets/swarmhub-demo-ldap-seed}
BASE_DN=${DEMO_LDAP_BASE_DN:-dc=swarmhub,dc=demo}
DIR=/var/lib/demo-ldap

if [ ! -r "$SEED" ]; then
  echo "demo-ldap: the seed LDIF $SEED is missing or unreadable (swarmhub demo up provides it as a Docker secret)" >&2
  exit 64
fi

rm -rf "$DIR"
mkdir -p "$DIR/db"
cat > "$DIR/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile $DIR/slapd.pid
database mdb
maxsize 67108864
suffix "$BASE_DN"
directory $DIR/db
index objectClass,uid,memberUid,member eq
access to attrs=userPassword by anonymous auth by * none
access to * by * read
CONF

umask 077
while IFS= read -r line; do
  case "$line" in
    "userPassword: "*) printf 'userPassword: %s\n' "$(slappasswd -s "${line#userPassword: }")" ;;
    *) printf '%s\n' "$line" ;;
  esac
done < "$SEED" > "$DIR/seed.ldif"

if ! slapadd -q -f "$DIR/slapd.conf" -l "$DIR/seed.ldif"; then
  echo "demo-ldap: slapadd refused the seed $SEED (see above)" >&2
  exit 65
fi
rm -f "$DIR/seed.ldif"
echo "demo-ldap: serving $BASE_DN on ldap:///" >&2
exec slapd -f "$DIR/slapd.conf" -h "ldap:///" -d "${DEMO_LDAP_LOGLEVEL:-stats}"
