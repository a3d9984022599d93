# guest/warm-snapshot.sh: run in the guest (sh -c) just before the boot snapshot is saved
# (scripts/build-boot-snapshot.mjs). It reads what a runtime install reads first, so that the
# guest's page cache, which is part of the snapshot, already holds it: after a restore, v86's
# disk-chunk cache is empty and every page the guest lacks costs a round trip to the server.
# Pages that are all zeros cost the snapshot nothing (v86 skips them), so reading the
# file system's metadata area is nearly free. Prints what it read, in KiB, and how long it took.
set -u
started=$(date +%s%N)
before=$(awk '/^Cached:/ { print $2 }' /proc/meminfo)

# 1. The ext4 metadata (superblock, group descriptors, bitmaps, inode tables): with flex_bg it
#    sits at the start of the disk. Creating a file reads its group's bitmaps and the inode
#    table block of its new inode; reading through the block device fills the same page cache
#    that ext4's metadata buffers use.
root_dev=$(awk '$2 == "/" { print $1 }' /proc/mounts | tail -n 1)
[ -b "$root_dev" ] || root_dev=/dev/sda
if [ -b "$root_dev" ]; then
	# Every group's inode table (flex_bg packs them, with the bitmaps, after the group
	# descriptors): read up to the end of the last one.
	metadata_blocks=$(dumpe2fs "$root_dev" 2>/dev/null | awk '
		/^Block size:/ { block = $3 }
		/Inode table at/ { split($4, range, "-"); if (range[2] + 0 > last) last = range[2] + 0 }
		END { if (block == 4096 && last > 0) print last + 1 }')
	[ -n "$metadata_blocks" ] && dd if="$root_dev" of=/dev/null bs=4096 count="$metadata_blocks" 2>/dev/null
fi

# 2. Every directory's entries (tar and dpkg look up and create entries in them). No stat of
#    each file: the inode tables are already read above, and a cached inode per file would add
#    its slab memory to the snapshot.
find / -xdev >/dev/null 2>&1

# 3. The programs both install paths run, with their shared libraries, and dpkg's database.
programs="sh dash bash cat cp mv rm ln mkdir rmdir chmod chown touch stat readlink mktemp
	basename dirname env id sort head tail tr cut wc sed grep awk mawk find xargs tar gzip
	gunzip sha256sum md5sum ldconfig dpkg dpkg-query dpkg-deb dpkg-split dpkg-divert
	dpkg-trigger dpkg-statoverride dpkg-maintscript-helper update-alternatives
	start-stop-daemon invoke-rc.d adduser addgroup useradd groupadd getent perl sync sysctl"
for program in $programs; do
	path=$(command -v "$program" 2>/dev/null) || continue
	case "$path" in /*) ;; *) continue ;; esac
	real=$(readlink -f "$path")
	cat -- "$real" >/dev/null 2>&1
	# Scripts (dpkg-maintscript-helper, adduser) have no libraries; ldd says so and exits 1.
	ldd "$real" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
done | sort -u | while read -r library; do cat -- "$library" >/dev/null 2>&1; done

for file in /var/lib/dpkg/status /var/lib/dpkg/available /var/lib/dpkg/diversions \
	/var/lib/dpkg/statoverride /var/lib/dpkg/alternatives/* /var/lib/dpkg/triggers/* \
	/var/lib/dpkg/info/*.list /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/* \
	/etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/ld.so.conf /etc/ld.so.conf.d/* \
	/etc/ld.so.cache /etc/nsswitch.conf /etc/adduser.conf /etc/login.defs; do
	[ -f "$file" ] && cat -- "$file" >/dev/null 2>&1
done
# Perl's own modules, which debconf and adduser load in maintainer scripts (the agent
# already runs perl, so most are read anyway).
find /usr/lib/i386-linux-gnu/perl-base /usr/share/perl5/Debconf /usr/share/debconf \
	-xdev -type f -exec cat -- {} + >/dev/null 2>&1

sync
after=$(awk '/^Cached:/ { print $2 }' /proc/meminfo)
ended=$(date +%s%N)
echo "warm-up: page cache $before KiB → $after KiB, in $(((ended - started) / 1000000)) ms"
