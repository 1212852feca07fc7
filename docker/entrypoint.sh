#!/bin/sh
# Stagecoach container entrypoint.
#
# Started as root (under tini, which is PID 1), it:
#   1. gives the user `stagecoach` the ids PUID/PGID (default 1000/1000), creating it if needed;
#      0 (root) is refused unless STAGECOACH_ALLOW_ROOT=1;
#   2. points /etc/localtime at $TZ when that zone exists;
#   3. writes the default config to $STAGECOACH_CONFIG on first start (mode 0600, with a generated
#      http.token, since the page listens on 0.0.0.0), never over an existing one;
#   4. chowns /config (config, journal, tokens) to PUID:PGID;
#   5. checks that /data is readable by that user, without touching it;
#   6. drops privileges with setpriv and execs node, so node receives the signals directly.
# Started as another user (docker run --user, Kubernetes runAsUser), it skips 1, 2 and 4.
#
# Arguments are passed to `stagecoach` unchanged (the image's CMD is `run`).
#
# STAGECOACH_ENTRYPOINT_ROOT is for tests only: a folder prefixed to every path this script
# reads or writes itself (/config, /data, /app, /etc, /usr/share/zoneinfo). Paths handed to
# node are never prefixed: they are the container's.
set -eu

root="${STAGECOACH_ENTRYPOINT_ROOT:-}"
PUID="${PUID:-1000}"
PGID="${PGID:-1000}"
TZ="${TZ:-}"
STAGECOACH_CONFIG="${STAGECOACH_CONFIG:-/config/stagecoach.yaml}"
export STAGECOACH_CONFIG
user=stagecoach
config_dir=/config
data_dir=/data
default_config=/app/docker/stagecoach.yaml
main=/app/dist/bundle/main.js

say() { printf 'stagecoach-entrypoint: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

case "$PUID" in '' | *[!0-9]*) die "PUID must be a number, got \"$PUID\"" ;; esac
case "$PGID" in '' | *[!0-9]*) die "PGID must be a number, got \"$PGID\"" ;; esac
if { [ "$PUID" -eq 0 ] || [ "$PGID" -eq 0 ]; } && [ "${STAGECOACH_ALLOW_ROOT:-}" != 1 ]; then
  die "PUID=$PUID PGID=$PGID would run the daemon as root: set PUID/PGID to the owner of your share (ls -n shows the numbers), or STAGECOACH_ALLOW_ROOT=1 to run as root anyway"
fi

# A name a group or user with this id already has (Unraid's PGID=100 is Debian's `users`).
name_of() { getent "$1" "$2" | cut -d: -f1; }
field_of() { getent passwd "$1" | cut -d: -f"$2"; }

ensure_user() {
  group=$(name_of group "$PGID" || true)
  if [ -z "$group" ]; then
    if getent group "$user" >/dev/null; then
      groupmod -g "$PGID" "$user"
    else
      groupadd -g "$PGID" "$user"
    fi
    group=$user
  fi
  if getent passwd "$user" >/dev/null; then
    if [ "$(field_of "$user" 3)" != "$PUID" ] || [ "$(field_of "$user" 4)" != "$PGID" ]; then
      # -o: PUID may already belong to another name (nobody, or a NAS's admin id)
      usermod -o -u "$PUID" -g "$PGID" "$user"
    fi
  else
    useradd -o -u "$PUID" -g "$PGID" -d "$config_dir" -M -s /usr/sbin/nologin "$user"
  fi
}

set_timezone() {
  [ -n "$TZ" ] || return 0
  zone="$root/usr/share/zoneinfo/$TZ"
  case "$TZ" in *..*) zone= ;; esac
  if [ -n "$zone" ] && [ -f "$zone" ]; then
    ln -sf "/usr/share/zoneinfo/$TZ" "$root/etc/localtime"
    printf '%s\n' "$TZ" >"$root/etc/timezone"
  else
    say "warning: unknown time zone TZ=\"$TZ\" (no /usr/share/zoneinfo/$TZ); keeping UTC"
  fi
}

# 32 random bytes as 64 hex characters.
new_token() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

first_start_config() {
  target="$root$STAGECOACH_CONFIG"
  [ -e "$target" ] && return 0
  token=$(new_token) || token=
  if [ "${#token}" -ne 64 ]; then
    say "warning: cannot generate an http token; the daemon will refuse to listen on 0.0.0.0 until http.token is set"
    token=
  fi
  # Written 0600 (it holds the token), then renamed: a config cut short by a crash would be worse than none.
  if ! { mkdir -p "$(dirname "$target")" \
    && (umask 077 && sed "${token:+s/^  token: null.*\$/  token: \"$token\"/}" "$root$default_config" >"$target.new.$$") \
    && chmod 600 "$target.new.$$" && mv "$target.new.$$" "$target"; }; then
    rm -f "$target.new.$$"
    say "warning: cannot write the default config to $STAGECOACH_CONFIG"
    return 0
  fi
  say "first start: wrote the default config to $STAGECOACH_CONFIG (edit it, then restart)"
  [ -n "$token" ] && say "first start: the status page asks for a token: it is http.token in $STAGECOACH_CONFIG (docker exec <container> grep token: $STAGECOACH_CONFIG)"
  return 0
}

# Runs a command as PUID:PGID with no supplementary groups and no way back to root.
as_user() { setpriv --reuid="$PUID" --regid="$PGID" --clear-groups --no-new-privs -- "$@"; }

if [ "$(id -u)" = 0 ]; then
  ensure_user
  set_timezone
  mkdir -p "$root$config_dir"
  first_start_config
  # /config only: it holds small files (config, journal, tokens). /data is never chowned: it is
  # usually a NAS share, possibly terabytes, whose ownership belongs to the NAS, and chowning it
  # would take hours and change files other apps share.
  chown -R "$PUID:$PGID" "$root$config_dir" || say "warning: cannot chown $config_dir to $PUID:$PGID; the daemon may not be able to write its journal"
  if [ -d "$root$data_dir" ] && ! as_user test -r "$root$data_dir" -a -x "$root$data_dir"; then
    say "warning: $data_dir is not readable by $PUID:$PGID; set PUID/PGID to the share's owner or grant read access"
  fi
  exec setpriv --reuid="$PUID" --regid="$PGID" --clear-groups --no-new-privs -- env HOME="$config_dir" USER="$user" node "$main" "$@"
fi

say "running as $(id -u):$(id -g), not root: PUID/PGID are not applied"
first_start_config
if [ -d "$root$data_dir" ] && ! test -r "$root$data_dir" -a -x "$root$data_dir"; then
  say "warning: $data_dir is not readable by $(id -u):$(id -g)"
fi
exec node "$main" "$@"
