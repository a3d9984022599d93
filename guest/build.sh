#!/usr/bin/env bash
# Builds the webvm guest image from Debian packages only:
#   rootfs.ext4  debootstrap bookworm i386 minbase (+ busybox procps iproute2
#                ca-certificates), the fast init and the guest agent
#   vmlinuz      Debian's 686 (non-PAE) kernel
#   initrd.img   static busybox + the disk/ext4/virtio/9p modules
#   seabios.bin, vgabios.bin   from Debian's seabios package
#   manifest.json
# into ${WEBVM_GUEST_CACHE:-$HOME/.cache/webvm-appserver/guest}/<hash>/, where
# <hash> covers every file under guest/ that goes into the image (this script,
# image/, agent/) and the settings below. A complete directory (one with
# manifest.json) is reused as is. The path is printed as the last line of
# stdout; progress goes to stderr.
#
# Usage: guest/build.sh [--print-dir | --print-hash | --prune]
#   --print-dir   print the cache directory for the current inputs, build nothing
#   --print-hash  print the hash only
#   --prune       build if needed, then delete the other images in the cache
#
# Environment:
#   WEBVM_GUEST_CACHE       cache root (default ~/.cache/webvm-appserver/guest)
#   WEBVM_ROOTFS_SIZE_MIB   apparent size of rootfs.ext4 in MiB (default 400)
#   WEBVM_DEBIAN_MIRROR     Debian mirror for debootstrap (default: the one in
#                           this machine's apt sources, found via apt-cache policy)
# Needs root (debootstrap, chroot). Installs missing host tools with apt-get.
set -euo pipefail

GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

SUITE=bookworm
ARCH=i386
VARIANT=minbase
INCLUDE_PKGS=busybox,procps,iproute2,ca-certificates
KERNEL_FLAVOUR=686
ROOTFS_SIZE_MIB=${WEBVM_ROOTFS_SIZE_MIB:-400}
INITRD_MODULES=(ata_piix ata_generic sd_mod ext4 ext2 virtio_pci 9pnet_virtio 9p
	virtio_net ne2k-pci virtio_balloon virtio_console)
# cryptomgr.notests skips the crypto self-tests (about half of the kernel's
# own boot time under emulation); noisapnp, pnpbios=off and acpi=off skip
# probes that find nothing in v86 (which has no ACPI unless asked).
KERNEL_CMDLINE="console=ttyS0 root=/dev/sda rootfstype=ext4 tsc=reliable mitigations=off random.trust_cpu=on cryptomgr.notests noisapnp pnpbios=off acpi=off quiet init=/sbin/webvm-init"
AGENT_TTY=/dev/ttyS1
READY_MARKER=webvm-ready
GUEST_IP=192.168.86.100/24
GUEST_GW=192.168.86.1
CACHE_ROOT=${WEBVM_GUEST_CACHE:-$HOME/.cache/webvm-appserver/guest}

log() { printf '[guest/build] %s\n' "$*" >&2; }
die() {
	printf '[guest/build] error: %s\n' "$*" >&2
	exit 1
}

# ------------------------------------------------------------------ hash

image_hash() {
	{
		printf 'suite=%s arch=%s variant=%s include=%s kernel=%s size=%s\n' \
			"$SUITE" "$ARCH" "$VARIANT" "$INCLUDE_PKGS" "$KERNEL_FLAVOUR" "$ROOTFS_SIZE_MIB"
		printf 'modules=%s\ncmdline=%s\n' "${INITRD_MODULES[*]}" "$KERNEL_CMDLINE"
		(cd "$GUEST_DIR" && find build.sh image agent -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
	} | sha256sum | cut -c1-16
}

HASH=$(image_hash)
OUT_DIR=$CACHE_ROOT/$HASH

PRUNE=
case "${1:-}" in
--print-dir)
	echo "$OUT_DIR"
	exit 0
	;;
--print-hash)
	echo "$HASH"
	exit 0
	;;
--prune) PRUNE=1 ;;
"") ;;
*) die "unknown argument: $1 (try --print-dir, --print-hash or --prune)" ;;
esac

prune_others() {
	[[ -n $PRUNE ]] || return 0
	local d
	for d in "$CACHE_ROOT"/????????????????; do
		[[ -d $d && $d != "$OUT_DIR" && $(basename "$d") =~ ^[0-9a-f]{16}$ ]] || continue
		log "pruning $d"
		rm -rf "$d"
	done
}

if [[ -f $OUT_DIR/manifest.json ]]; then
	log "up to date: $OUT_DIR"
	prune_others
	echo "$OUT_DIR"
	exit 0
fi

[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap and chroot need it)"
if ! [[ $ROOTFS_SIZE_MIB =~ ^[0-9]+$ ]] || ((ROOTFS_SIZE_MIB < 200)); then
	die "WEBVM_ROOTFS_SIZE_MIB must be a number >= 200"
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock-$HASH"
flock 9
if [[ -f $OUT_DIR/manifest.json ]]; then # built by a concurrent run
	echo "$OUT_DIR"
	exit 0
fi

T0=$(date +%s)

# ------------------------------------------------------------------ host tools

APT_UPDATED=
apt_update() {
	if [[ -z $APT_UPDATED ]]; then
		log "apt-get update"
		apt-get update -qq >&2
		APT_UPDATED=1
	fi
}

ensure_host_tools() {
	local pkgs=()
	command -v debootstrap >/dev/null || pkgs+=(debootstrap)
	command -v mkfs.ext4 >/dev/null || pkgs+=(e2fsprogs)
	command -v modprobe >/dev/null && command -v depmod >/dev/null || pkgs+=(kmod)
	command -v cpio >/dev/null || pkgs+=(cpio)
	command -v gzip >/dev/null || pkgs+=(gzip)
	command -v flock >/dev/null || pkgs+=(util-linux)
	[[ -f /usr/share/seabios/bios.bin && -f /usr/share/seabios/vgabios-stdvga.bin ]] || pkgs+=(seabios)
	[[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] || pkgs+=(debian-archive-keyring)
	if ((${#pkgs[@]})); then
		apt_update
		log "installing host tools: ${pkgs[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2
	fi
	if ! dpkg --print-foreign-architectures | grep -qx "$ARCH"; then
		log "dpkg --add-architecture $ARCH"
		dpkg --add-architecture "$ARCH"
		APT_UPDATED=
		apt_update
	fi
	if ! apt-cache show "busybox-static:$ARCH" >/dev/null 2>&1; then
		apt_update
	fi
}

# The Debian archive this machine's apt uses for $SUITE/main (any sources format).
debian_mirror() {
	if [[ -n ${WEBVM_DEBIAN_MIRROR:-} ]]; then
		echo "$WEBVM_DEBIAN_MIRROR"
		return
	fi
	apt-cache policy | awk -v s="$SUITE/main" '$3 == s && $2 ~ /^https?:/ { print $2; exit }'
}

ensure_host_tools
MIRROR=$(debian_mirror)
[[ -n $MIRROR ]] || die "no Debian mirror for $SUITE/main in apt sources (set WEBVM_DEBIAN_MIRROR)"

# ------------------------------------------------------------------ work dir

WORK=$(mktemp -d "$CACHE_ROOT/.build-$HASH.XXXXXX")
cleanup() {
	local rc=$?
	for m in proc sys dev/pts dev; do
		if mountpoint -q "$WORK/rootfs/$m" 2>/dev/null; then umount -l "$WORK/rootfs/$m"; fi
	done
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
ROOT=$WORK/rootfs
OUT=$WORK/out
mkdir -p "$WORK/debs" "$OUT"
log "building $HASH in $WORK"

# ------------------------------------------------------------------ kernel + busybox

KERNEL_PKG=$(apt-cache depends "linux-image-$KERNEL_FLAVOUR:$ARCH" 2>/dev/null |
	awk '/Depends: linux-image-[0-9]/ { sub(/:.*/, "", $2); print $2; exit }')
if [[ -z $KERNEL_PKG ]]; then
	KERNEL_PKG=$(apt-cache search --names-only "^linux-image-[0-9.]+-[0-9]+-$KERNEL_FLAVOUR\$" |
		awk '{ print $1 }' | sort -V | tail -n1)
fi
[[ -n $KERNEL_PKG ]] || die "cannot find linux-image-*-$KERNEL_FLAVOUR for $ARCH"
KVER=${KERNEL_PKG#linux-image-}
log "kernel package $KERNEL_PKG"

(cd "$WORK/debs" && apt-get download -qq -o APT::Sandbox::User=root \
	"$KERNEL_PKG:$ARCH" "busybox-static:$ARCH" >&2)
KERNEL_DEB=$(ls "$WORK"/debs/linux-image-*.deb)
BUSYBOX_DEB=$(ls "$WORK"/debs/busybox-static_*.deb)
KERNEL_DEB_VERSION=$(dpkg-deb -f "$KERNEL_DEB" Version)
BUSYBOX_DEB_VERSION=$(dpkg-deb -f "$BUSYBOX_DEB" Version)
SEABIOS_VERSION=$(dpkg-query -W -f='${Version}' seabios 2>/dev/null || echo unknown)

dpkg-deb -x "$KERNEL_DEB" "$WORK/kernel"
dpkg-deb -x "$BUSYBOX_DEB" "$WORK/busybox"
[[ -f $WORK/kernel/boot/vmlinuz-$KVER ]] || die "vmlinuz-$KVER missing from $KERNEL_DEB"
[[ -d $WORK/kernel/lib/modules/$KVER ]] || die "modules for $KVER missing from $KERNEL_DEB"
depmod -b "$WORK/kernel" "$KVER"

# ------------------------------------------------------------------ rootfs

# debootstrap's downloads are kept as a tarball beside the images, so a change
# to the init or the agent does not download the base system again. Delete
# $CACHE_ROOT/debootstrap/ to pick up newer Debian packages.
DEBS_KEY=$(printf '%s %s %s %s' "$SUITE" "$ARCH" "$VARIANT" "$INCLUDE_PKGS" | sha256sum | cut -c1-12)
DEBS_TARBALL=$CACHE_ROOT/debootstrap/$SUITE-$ARCH-$VARIANT-$DEBS_KEY.tgz
if [[ ! -f $DEBS_TARBALL ]]; then
	log "debootstrap --make-tarball (downloads the base system)"
	mkdir -p "$CACHE_ROOT/debootstrap" "$WORK/dl"
	debootstrap --arch="$ARCH" --variant="$VARIANT" --include="$INCLUDE_PKGS" \
		--make-tarball="$DEBS_TARBALL.part" "$SUITE" "$WORK/dl" "$MIRROR" >"$WORK/debootstrap-dl.log" 2>&1 ||
		{
			tail -n 30 "$WORK/debootstrap-dl.log" >&2
			die "debootstrap --make-tarball failed"
		}
	mv "$DEBS_TARBALL.part" "$DEBS_TARBALL"
	rm -rf "$WORK/dl"
fi
log "debootstrap $SUITE $ARCH $VARIANT (+$INCLUDE_PKGS)"
debootstrap --arch="$ARCH" --variant="$VARIANT" --include="$INCLUDE_PKGS" \
	--unpack-tarball="$DEBS_TARBALL" "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
	{
		tail -n 30 "$WORK/debootstrap.log" >&2
		die "debootstrap failed"
	}
for m in proc sys dev/pts dev; do
	if mountpoint -q "$ROOT/$m"; then umount -l "$ROOT/$m"; fi
done

log "configuring the root filesystem"
install -D -m 0755 "$GUEST_DIR/image/webvm-init" "$ROOT/usr/sbin/webvm-init"
install -D -m 0755 "$GUEST_DIR/agent/webvm-agent" "$ROOT/usr/local/sbin/webvm-agent"

echo webvm >"$ROOT/etc/hostname"
cat >"$ROOT/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	webvm
::1		localhost ip6-localhost ip6-loopback
EOF
# v86's fetch adapter answers DNS itself at the router address.
echo "nameserver ${GUEST_GW}" >"$ROOT/etc/resolv.conf"
echo "/dev/sda / ext4 rw,noatime 0 1" >"$ROOT/etc/fstab"

# Packages installed later must not start their services: the host's app
# supervisor decides what runs.
cat >"$ROOT/usr/sbin/policy-rc.d" <<'EOF'
#!/bin/sh
# webvm: services are started by the app supervisor, never by dpkg.
exit 101
EOF
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"

# dpkg inside the emulator: no fsync (the disk is a RAM-backed image that is
# saved whole with the snapshot), and no docs, man pages or translations.
mkdir -p "$ROOT/etc/dpkg/dpkg.cfg.d" "$ROOT/etc/apt/apt.conf.d"
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/webvm" <<'EOF'
force-unsafe-io
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/linda/*
EOF
cat >"$ROOT/etc/apt/apt.conf.d/90webvm" <<'EOF'
APT::Install-Recommends "0";
APT::Install-Suggests "0";
Acquire::Languages "none";
EOF
chroot "$ROOT" /usr/bin/passwd -d root >/dev/null

log "trimming docs, man pages, locales and apt lists"
find "$ROOT/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/usr/share/lintian/*
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb
rm -f "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/lib/dpkg/*-old
rm -rf "$ROOT"/var/log/* "$ROOT"/tmp/* "$ROOT"/var/tmp/* "$ROOT"/debootstrap
: >"$ROOT/etc/machine-id"

# ------------------------------------------------------------------ initrd

log "initrd with ${#INITRD_MODULES[@]} drivers (+ dependencies)"
INITRD=$WORK/initrd
mkdir -p "$INITRD"/{bin,dev,proc,sys,newroot,lib/modules}
install -m 0755 "$WORK/busybox/bin/busybox" "$INITRD/bin/busybox"
# Applet links made here, not with --install at boot (saves time under emulation).
for applet in $("$INITRD/bin/busybox" --list); do
	[[ $applet == busybox ]] || ln -sf busybox "$INITRD/bin/$applet"
done
mknod -m 0600 "$INITRD/dev/console" c 5 1
mknod -m 0666 "$INITRD/dev/null" c 1 3
install -m 0755 "$GUEST_DIR/image/initrd-init" "$INITRD/init"
: >"$INITRD/lib/modules/load.order"
declare -A SEEN=()
MODULE_COUNT=0
for mod in "${INITRD_MODULES[@]}"; do
	deps=$(modprobe -d "$WORK/kernel" -S "$KVER" --show-depends "$mod") ||
		die "modprobe cannot resolve $mod for $KVER"
	while read -r kind path _; do
		[[ $kind == insmod ]] || continue # "builtin x" needs nothing
		rel=${path#"$WORK/kernel/lib/modules/$KVER/"}
		[[ -n ${SEEN[$rel]:-} ]] && continue
		SEEN[$rel]=1
		install -D -m 0644 "$path" "$INITRD/lib/modules/$rel"
		echo "$rel" >>"$INITRD/lib/modules/load.order"
		MODULE_COUNT=$((MODULE_COUNT + 1))
	done <<<"$deps"
done
# Drop the modules' appended signatures: checking them (SHA-256 + RSA in
# emulated kernel code) took about a third of the module loading time in v86.
# The kernel then only notes an unsigned module (taint, not shown with quiet).
find "$INITRD/lib/modules" -name '*.ko' -exec perl -e '
	my $magic = "~Module signature appended~\n";
	for my $f (@ARGV) {
		open(my $h, "<:raw", $f) or die "$f: $!";
		my $d = do { local $/; <$h> };
		close $h;
		next unless substr($d, -length $magic) eq $magic;
		my $siglen = unpack("N", substr($d, -length($magic) - 4, 4));
		my $keep = length($d) - length($magic) - 12 - $siglen;
		die "$f: bad signature trailer" if $keep <= 0;
		open($h, ">:raw", $f) or die "$f: $!";
		print $h substr($d, 0, $keep);
		close $h;
	}' {} +
(cd "$INITRD" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc --owner 0:0 --reproducible) | gzip -9 -n >"$OUT/initrd.img"

# ------------------------------------------------------------------ outputs

cp "$WORK/kernel/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
cp /usr/share/seabios/bios.bin "$OUT/seabios.bin"
cp /usr/share/seabios/vgabios-stdvga.bin "$OUT/vgabios.bin"

log "mkfs.ext4 -d (${ROOTFS_SIZE_MIB} MiB, no journal)"
FS_UUID=$(printf '%s' "$HASH" | sha256sum | sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12}).*/\1-\2-\3-\4-\5/')
mkfs.ext4 -q -F -L webvm-root -U "$FS_UUID" -b 4096 -i 8192 -m 0 \
	-O ^has_journal -E root_owner=0:0,lazy_itable_init=0 \
	-d "$ROOT" "$OUT/rootfs.ext4" "${ROOTFS_SIZE_MIB}M" >&2

# ------------------------------------------------------------------ manifest

json_files() {
	local first=1 f
	for f in rootfs.ext4 vmlinuz initrd.img seabios.bin vgabios.bin; do
		((first)) || printf ','
		first=0
		printf '\n    "%s": {"size": %s, "sha256": "%s"}' "$f" \
			"$(stat -c %s "$OUT/$f")" "$(sha256sum "$OUT/$f" | cut -d' ' -f1)"
	done
}
json_packages() {
	dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f='${Package}\t${Version}\n' |
		LC_ALL=C sort | awk -F'\t' 'BEGIN { ORS = "" }
			{ printf "%s\n    \"%s\": \"%s\"", (NR > 1 ? "," : ""), $1, $2 }'
}
json_modules() {
	awk 'BEGIN { ORS = "" } { n = split($0, p, "/"); sub(/\.ko$/, "", p[n]);
		printf "%s\"%s\"", (NR > 1 ? ", " : ""), p[n] }' "$INITRD/lib/modules/load.order"
}
BUILD_SECONDS=$(($(date +%s) - T0))
cat >"$OUT/manifest.json" <<EOF
{
  "hash": "$HASH",
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "buildSeconds": $BUILD_SECONDS,
  "suite": "$SUITE",
  "arch": "$ARCH",
  "kernelVersion": "$KVER",
  "kernelCmdline": "$KERNEL_CMDLINE",
  "rootfsSizeMiB": $ROOTFS_SIZE_MIB,
  "rootfsAllocatedBytes": $(($(stat -c %b "$OUT/rootfs.ext4") * $(stat -c %B "$OUT/rootfs.ext4"))),
  "agentDevice": "$AGENT_TTY",
  "consoleDevice": "/dev/ttyS0",
  "readyMarker": "$READY_MARKER",
  "ninePShareTag": "host9p",
  "ninePMountPoint": "/mnt/host",
  "network": {"address": "$GUEST_IP", "gateway": "$GUEST_GW", "dns": "$GUEST_GW"},
  "initrdModules": [$(json_modules)],
  "bootPackages": {
    "$KERNEL_PKG": "$KERNEL_DEB_VERSION",
    "busybox-static": "$BUSYBOX_DEB_VERSION",
    "seabios": "$SEABIOS_VERSION"
  },
  "files": {$(json_files)
  },
  "debianPackages": {$(json_packages)
  }
}
EOF

# ------------------------------------------------------------------ publish

if [[ -e $OUT_DIR ]]; then
	log "replacing incomplete $OUT_DIR"
	rm -rf "$OUT_DIR"
fi
mv -T "$OUT" "$OUT_DIR"
rm -f "$CACHE_ROOT/.lock-$HASH"
log "done in ${BUILD_SECONDS}s: $OUT_DIR ($MODULE_COUNT modules in the initrd)"
prune_others
ls -l "$OUT_DIR" >&2
echo "$OUT_DIR"
