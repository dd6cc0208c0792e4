#!/usr/bin/env bash
# Installs what the lab, the tests and the demonstration need on a Debian/Ubuntu machine, and
# nothing when it is already there. Run as root. Safe to run again.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (it installs Debian packages and prepares the lab's user)." >&2
  exit 1
fi

packages=(libvirt0 libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
          iproute2 iptables fping iputils-ping busybox-static cpio kmod
          # Servers the lab and the tests start themselves, on addresses inside their own namespaces
          # or loopback: MQTT broker, etcd, Prometheus, OpenSSH, TLS tooling and SASL.
          mosquitto mosquitto-clients etcd-server etcd-client prometheus openssh-server openssh-client
          gnutls-bin sasl2-bin libsasl2-modules
          # The netem guest's SSH server (its binary is copied into the guest image).
          dropbear-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

cache=${CLOUDLETS_LAB_CACHE:-/var/cache/cloudlets-lab}
mkdir -p "$cache"
have_kernel_deb=$(find "$cache" -maxdepth 1 -name 'linux-image-*-cloud-amd64_*.deb' -print -quit)

if [ ${#missing[@]} -gt 0 ] || [ -z "$have_kernel_deb" ]; then
  echo "install-deps: apt-get update"
  apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  # Packages such as mosquitto, prometheus and openssh-server start their service on install
  # (listening on every address). The lab starts its own instances where it needs them, so
  # service starts are refused for the duration of the install (Debian's policy-rc.d mechanism),
  # unless the machine already has a policy of its own.
  policy=/usr/sbin/policy-rc.d
  own_policy=false
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# written by cloudlets install-deps for the duration of one install\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    own_policy=true
  fi
  status=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
  if [ "$own_policy" = true ]; then rm -f "$policy"; fi
  [ "$status" -eq 0 ] || exit "$status"
fi

# The guest kernel: the Debian cloud kernel package is downloaded (not installed) into the lab's
# cache; the lab takes vmlinuz and the virtio modules out of it.
if [ -z "$have_kernel_deb" ]; then
  versioned=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  if [ -z "$versioned" ]; then
    echo "install-deps: cannot find the versioned package behind linux-image-cloud-amd64" >&2
    exit 1
  fi
  echo "install-deps: downloading $versioned into $cache"
  (cd "$cache" && apt-get download -qq "$versioned" 2>/dev/null || apt-get download "$versioned")
fi

# libvirtd refuses to start without the user its QEMU driver is configured for.
getent group kvm >/dev/null || groupadd -r kvm
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
id libvirt-qemu >/dev/null 2>&1 || useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu

echo "install-deps: ready"
