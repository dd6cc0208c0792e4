#!/bin/busybox sh
# /init of the cloudlets lab guest. It brings eth0 up with the address given on the kernel command
# line (cloudlets.addr=A.B.C.D/NN), answers ICMP (the kernel does), and serves on TCP port
# cloudlets.port one line "boot=<boot id> counter=<n>" where n grows by one every second: a reader
# that sees the same boot id and a larger counter knows the guest kept running (no reboot).
# cloudlets.route=NET/NN (a lab with several sites) routes that network on-link too: the sites' subnets
# share the lab switch with the hosts, and no router sits between them.
# With cloudlets.dirty=N (MiB/s, 0 = off) it rewrites an N MiB file in its RAM (tmpfs) in place with
# non-zero bytes once a second, so a migration sees N MiB of guest memory dirtied per second (and a working set of N MiB).
# A netem-host image (it has /usr/sbin/dropbear, iproute2's tc and ip in /usr/sbin and the traffic-control
# modules in its module order) also starts Dropbear on its address, port 22: keys only, the host key and
# root's authorized_keys from the per-guest archive the lab appends. It starts before the state service,
# so a guest that answers is reachable by SSH too.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /run
for m in $(cat /lib/modules/order); do
  insmod "/lib/modules/$m.ko" || echo "cloudlets: insmod $m failed"
done
addr=
port=7070
route=
dirty=0
for a in $(cat /proc/cmdline); do
  case "$a" in
    cloudlets.addr=*) addr="${a#cloudlets.addr=}" ;;
    cloudlets.port=*) port="${a#cloudlets.port=}" ;;
    cloudlets.route=*) route="${a#cloudlets.route=}" ;;
    cloudlets.dirty=*) dirty="${a#cloudlets.dirty=}" ;;
  esac
done
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ "$i" -lt 200 ]; do
  usleep 50000
  i=$((i + 1))
done
ip link set eth0 up
ip addr add "$addr" dev eth0
[ -n "$route" ] && ip route add "$route" dev eth0
boot=$(cat /proc/sys/kernel/random/boot_id)
echo "boot=$boot counter=0" > /run/state
echo "cloudlets: guest up at $addr, boot $boot, service port $port"
(
  n=0
  while :; do
    echo "boot=$boot counter=$n" > /run/state.new
    mv /run/state.new /run/state
    n=$((n + 1))
    sleep 1
  done
) &
if [ "$dirty" -gt 0 ]; then
  # Its own tmpfs, sized for the file, so the dirtying never fills /run (the state file lives there).
  mkdir -p /dirty
  mount -t tmpfs -o size=$((dirty + 1))m tmpfs /dirty
  echo "cloudlets: dirtying $dirty MiB/s"
  (
    pass=0
    while :; do
      # /proc/uptime is "SECONDS.CC ...": centiseconds without a clock tool; sleep what is left of the second.
      read -r up _ < /proc/uptime
      t0=${up%.*}${up#*.}
      # Not zeros (QEMU sends a zero page as a marker, not its bytes), and new bytes each pass (so
      # XBZRLE's delta cannot shrink them to nothing either).
      yes "cloudlets dirty pass $pass" | dd of=/dirty/pages bs=64k count=$((dirty * 16)) iflag=fullblock conv=notrunc 2>/dev/null
      pass=$((pass + 1))
      read -r up _ < /proc/uptime
      t1=${up%.*}${up#*.}
      left=$((100 - t1 + t0))
      if [ "$left" -gt 0 ]; then
        usleep $((left * 10000))
      fi
    done
  ) &
fi
if [ -x /usr/sbin/dropbear ]; then
  mkdir -p /dev/pts
  mount -t devpts devpts /dev/pts
  # -s -g: no password logins (root neither); -j -k: no port forwarding; -E: log to stderr (the log file).
  /usr/sbin/dropbear -r /etc/dropbear/dropbear_ed25519_host_key -p "${addr%/*}:22" -s -g -j -k -E -P /run/dropbear.pid 2>>/run/dropbear.log \
    && echo "cloudlets: ssh (dropbear) on ${addr%/*}:22" \
    || echo "cloudlets: dropbear failed: $(cat /run/dropbear.log)"
fi
nc -ll -p "$port" -e /bin/guest-state &
while :; do
  sleep 3600
done
