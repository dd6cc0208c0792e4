#!/usr/bin/env bash
# Installs what the lab, the tests and the demonstration need on a Debian/Ubuntu machine, and
# nothing when it is already there. Run as root. Safe to run again.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (it installs Debian packages and prepares the lab's user)." >&2
  exit 1
fi

packages=(libvirt0 libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
          iproute2 iptables fping busybox-static cpio kmod)
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
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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
