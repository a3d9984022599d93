#!/usr/bin/env bash
# Boots the guest image in qemu (TCG, Pentium III, 256 MiB) and runs the
# agent end-to-end test (tools/agent_smoke.py) against it.
#
# Usage: guest/smoke-qemu.sh [IMAGE_DIR]
#   IMAGE_DIR defaults to the output of guest/build.sh (built if needed).
# Environment:
#   WEBVM_QEMU_MEM=256        guest memory in MiB
#   WEBVM_QEMU_KEEP=1         keep the temp dir (console log) afterwards
#   WEBVM_QEMU_INTERACTIVE=1  boot and attach the console to this terminal
#                             instead of running the test (Ctrl-A X quits)
#
# qemu is a test tool only (the product runs the image in v86); it is
# installed from Debian when missing. The disk is opened with snapshot=on, so
# the cached image is never modified. Boot times under qemu TCG are not v86's.
set -euo pipefail

GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE_DIR=${1:-}
if [[ -z $IMAGE_DIR ]]; then
	IMAGE_DIR=$("$GUEST_DIR/build.sh" | tail -n1)
fi
[[ -f $IMAGE_DIR/manifest.json ]] || {
	echo "smoke-qemu: no image in $IMAGE_DIR" >&2
	exit 1
}

if ! command -v qemu-system-i386 >/dev/null; then
	echo "smoke-qemu: installing qemu-system-x86 from Debian" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >&2
fi

CMDLINE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["kernelCmdline"])' \
	"$IMAGE_DIR/manifest.json")
TMP=$(mktemp -d /tmp/webvm-smoke.XXXXXX)
mkdir -p "$TMP/share"
QEMU_PID=
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
	local rc=$?
	if [[ -n $QEMU_PID ]] && kill -0 "$QEMU_PID" 2>/dev/null; then
		kill "$QEMU_PID" 2>/dev/null || true
		wait "$QEMU_PID" 2>/dev/null || true
	fi
	if [[ ${WEBVM_QEMU_KEEP:-} == 1 ]]; then
		echo "smoke-qemu: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT

QEMU_ARGS=(
	-machine pc -accel tcg -cpu pentium3 -m "${WEBVM_QEMU_MEM:-256}"
	-bios "$IMAGE_DIR/seabios.bin"
	-kernel "$IMAGE_DIR/vmlinuz" -initrd "$IMAGE_DIR/initrd.img" -append "$CMDLINE"
	-drive "file=$IMAGE_DIR/rootfs.ext4,format=raw,if=ide,snapshot=on"
	-nic "user,model=virtio-net-pci,restrict=on,net=192.168.86.0/24,host=192.168.86.1"
	-virtfs "local,path=$TMP/share,mount_tag=host9p,security_model=none,id=host9p"
	-display none -no-reboot
)

if [[ ${WEBVM_QEMU_INTERACTIVE:-} == 1 ]]; then
	exec qemu-system-i386 "${QEMU_ARGS[@]}" -serial mon:stdio \
		-serial "unix:$TMP/agent.sock,server=on,wait=off"
fi

T0=$(date +%s.%N)
qemu-system-i386 "${QEMU_ARGS[@]}" -monitor none \
	-serial "file:$TMP/console.log" \
	-serial "unix:$TMP/agent.sock,server=on,wait=off" &
QEMU_PID=$!

rc=0
python3 "$GUEST_DIR/tools/agent_smoke.py" --socket "$TMP/agent.sock" \
	--console "$TMP/console.log" --share "$TMP/share" || rc=$?

READY=$(grep -a -m1 -o 'webvm-ready uptime=[0-9.]*' "$TMP/console.log" || true)
echo "smoke-qemu: qemu started $(date -d "@${T0%.*}" +%T); console says: ${READY:-no ready marker}"
if ((rc != 0)); then
	echo "---- console (last 40 lines) ----"
	tail -n 40 "$TMP/console.log" | tr -d '\r'
fi
exit "$rc"
