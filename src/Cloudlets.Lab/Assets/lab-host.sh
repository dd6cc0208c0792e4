#!/bin/sh
# Starts one cloudlet host of the lab. Run it inside the host's network namespace under
# `unshare --mount --uts --propagation private`, so the bind mounts and the hostname stay private
# to this host and live as long as its daemons do:
#   lab-host.sh start HOST_FOLDER HOSTNAME
# HOST_FOLDER holds etc/ lib/ log/ run/ (bind-mounted over /etc/libvirt, /var/lib/libvirt,
# /var/log/libvirt and /run). Or, to start libvirtd again inside the namespaces of a live process
# of the host (its virtlogd):
#   lab-host.sh libvirtd HOST_FOLDER PID
set -eu

fail() {
  echo "lab-host.sh: $*" >&2
  exit 2
}

[ "$#" -eq 3 ] || { [ "$#" -eq 5 ] && [ "$1" = libvirtd ]; } || fail "usage: lab-host.sh start HOST_FOLDER HOSTNAME | lab-host.sh libvirtd HOST_FOLDER MNT_FILE UTS_FILE NET_FILE"
mode=$1
dir=$2
case "$dir" in
  /*) ;;
  *) fail "HOST_FOLDER must be absolute" ;;
esac
case "$dir" in
  *[!A-Za-z0-9/._-]* | *..*) fail "HOST_FOLDER has characters outside [A-Za-z0-9/._-] or '..'" ;;
esac
[ -d "$dir/etc" ] && [ -d "$dir/lib" ] && [ -d "$dir/log" ] && [ -d "$dir/run" ] || fail "HOST_FOLDER lacks etc/ lib/ log/ run/"

case "$mode" in
  start)
    name=$3
    case "$name" in
      "" | -* | *[!a-z0-9-]*) fail "HOSTNAME must be lowercase letters, digits and '-'" ;;
    esac
    # This mount namespace is a copy of the root one: drop its copies of the named network
    # namespaces (they would keep other labs' namespaces referenced as long as this host lives).
    umount -R -l /run/netns 2>/dev/null || true
    mkdir -p /var/lib/libvirt /var/log/libvirt /etc/libvirt
    mount --bind "$dir/etc" /etc/libvirt
    mount --bind "$dir/lib" /var/lib/libvirt
    mount --bind "$dir/log" /var/log/libvirt
    # /run last: the host folder itself may live under /run.
    mount --bind "$dir/run" /run
    hostname "$name"
    # A SASL lab's host has its SASL configuration for libvirt in its own /etc/libvirt/sasl2 (on a real host:
    # /etc/sasl2/libvirt.conf); cyrus-sasl reads SASL_CONF_PATH for a daemon that is not setuid.
    if [ -f /etc/libvirt/sasl2/libvirt.conf ]; then
      export SASL_CONF_PATH=/etc/libvirt/sasl2
    fi
    virtlogd -d </dev/null >>/var/log/libvirt/daemons.log 2>&1
    libvirtd -d -l </dev/null >>/var/log/libvirt/daemons.log 2>&1
    # An SSH lab's host also runs its own OpenSSH server in these namespaces (it reaches libvirtd's
    # unix socket here). By absolute path (sshd re-executes itself); in the foreground (-D) of a
    # background job, logging to the host's log (-e); its pid file is the host's /run/sshd.pid.
    if [ -f /etc/libvirt/ssh/sshd_config ]; then
      sshd=$(command -v sshd) || fail "no sshd on PATH"
      mkdir -p /run/sshd
      chmod 755 /run/sshd
      "$sshd" -D -e -f /etc/libvirt/ssh/sshd_config </dev/null >>/var/log/libvirt/daemons.log 2>&1 &
    fi
    ;;
  libvirtd)
    [ "$#" -eq 5 ] || fail "usage: lab-host.sh libvirtd HOST_FOLDER MNT_FILE UTS_FILE NET_FILE"
    for f in "$3" "$4" "$5"; do
      case "$f" in
        /proc/[0-9]*/fd/[0-9]*) ;;
        *) fail "namespace files must be /proc/PID/fd/N" ;;
      esac
      case "$f" in
        *[!a-z0-9/]*) fail "namespace files must be /proc/PID/fd/N" ;;
      esac
    done
    if [ -f "$dir/etc/sasl2/libvirt.conf" ]; then
      export SASL_CONF_PATH=/etc/libvirt/sasl2
    fi
    exec nsenter --mount="$3" --uts="$4" --net="$5" -- libvirtd -d -l </dev/null >>"$dir/log/daemons.log" 2>&1
    ;;
  *)
    fail "unknown mode '$mode'"
    ;;
esac
