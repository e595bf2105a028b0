#!/usr/bin/env bash
# bench/run.sh — `make bench`: how a build compares with the hand pipeline,
# with itself (rebuilds), with cp of its output bytes, and at 1,000 nodes,
# each figure next to its target from issue 12. It reports; it asserts
# nothing: the exit status is 0 whenever every measurement ran.
#
# Environment:
#   BENCH_SCALE  full (default: ~193 MB of ELF + a 28 MB image archive) or
#                small (~26 MB: for working on the bench itself)
#   BENCH_RUNS   runs per short measurement, median quoted (default 3)
#   BENCH_NODES  workers of the large cluster (default 1000; 0 skips it)
#   BENCH_CACHE  downloaded .debs and made payloads (default out/bench-cache)
#   BENCH_TMP    where the work directory goes (default out/: on the same file
#                system as the cache, so the hand pipeline can hard-link)
#   BENCH_KEEP   1: keep the work directory (projects, outputs, logs)
#   DLWS_MKIMAGE the tool to measure (default ./dlws-mkimage)
set -euo pipefail
export LC_ALL=C

prog=bench/run.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MK=${DLWS_MKIMAGE:-$ROOT/dlws-mkimage}
SCALE=${BENCH_SCALE:-full}
RUNS=${BENCH_RUNS:-3}
NODES=${BENCH_NODES:-1000}
CACHE=${BENCH_CACHE:-$ROOT/out/bench-cache}
TMPBASE=${BENCH_TMP:-$ROOT/out}

die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }
case "$RUNS" in '' | *[!0-9]* | 0) die "BENCH_RUNS must be a positive number, not '$RUNS'" ;; esac
case "$NODES" in '' | *[!0-9]*) die "BENCH_NODES must be a number, not '$NODES'" ;; esac
case "$SCALE" in full | small) ;; *) die "BENCH_SCALE must be 'full' or 'small', not '$SCALE'" ;; esac

[ -x "$MK" ] || die "no tool at '$MK' (run 'make' first, or set DLWS_MKIMAGE)"
[ -x /usr/bin/time ] || die "/usr/bin/time not found: peak RSS is GNU time's %M (make deps installs package 'time')"
for t in openssl cpio gzip xorriso grub-mkimage mkfs.fat mcopy apt-get dpkg-deb sha256sum awk; do
	command -v "$t" >/dev/null 2>&1 || die "'$t' not found (make deps installs it)"
done
for f in "$ROOT/recipes/master.recipe" "$ROOT/recipes/worker.recipe" "$ROOT/recipes/cluster.yaml"; do
	[ -f "$f" ] || die "missing '$f'"
done
[ -f "$ROOT/out/agent/dlws-payload" ] || [ -n "${DLWS_PAYLOAD_SCRIPT:-}" ] ||
	die "no out/agent/dlws-payload (run 'make' first)"
PAYLOAD_SCRIPT=${DLWS_PAYLOAD_SCRIPT:-$ROOT/out/agent/dlws-payload}

mkdir -p "$TMPBASE" "$CACHE"
WORK=$(mktemp -d "$TMPBASE/bench-work.XXXXXX") || die "cannot make a work directory in '$TMPBASE'"
cleanup() {
	if [ "${BENCH_KEEP:-0}" = 1 ]; then printf '%s: kept %s\n' "$prog" "$WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
LOGS=$WORK/logs
mkdir -p "$LOGS"
# A cache the tool may keep under XDG_CACHE_HOME is the bench's to empty.
export XDG_CACHE_HOME=$WORK/xdg-cache

load() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD_START=$(load)
say "== dlws-mkimage bench: scale $SCALE, $RUNS runs per figure (medians), $(nproc) cores, load average $LOAD_START"
say "   tool: $MK ($("$MK" --version 2>/dev/null | head -n 1))"

PAYLOAD=$("$ROOT/bench/payload.sh" "$CACHE" "$SCALE") || die "could not make the payload (above)"
payload_bytes=$(awk '{print $1}' "$PAYLOAD/files.list" "$PAYLOAD/images.list" |
	(cd "$PAYLOAD" && xargs stat -c %s) | awk '{s += $1} END {print s}')
say "   payload: $(awk -v b="$payload_bytes" 'BEGIN {printf "%.0f MB", b / 1e6}') in $PAYLOAD"

# ---- helpers -------------------------------------------------------------
# measure NAME CMD...: runs CMD, appends its wall seconds and peak RSS (KiB,
# the largest single process: GNU time's %M) to $WORK/NAME.times.
measure() {
	local name=$1 t0 t1 log
	shift
	log=$LOGS/$name.$(date +%s%N)
	# What the last command left to write back is not this one's to pay.
	sync
	t0=$EPOCHREALTIME
	if ! /usr/bin/time -f '%M' -o "$log.rss" "$@" >"$log" 2>&1; then
		tail -n 20 "$log" >&2
		die "'$*' failed during '$name' (its last lines above)"
	fi
	t1=$EPOCHREALTIME
	LAST_LOG=$log
	printf '%s %s\n' "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" "$(tail -n 1 "$log.rss")" \
		>>"$WORK/$name.times"
}
median() {	# NAME [COLUMN]
	sort -g -k"${2:-1},${2:-1}" "$WORK/$1.times" | awk -v c="${2:-1}" '{v[NR] = $c}
		END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
maxcol() { sort -g -k"$2,$2" "$WORK/$1.times" | tail -n 1 | awk -v c="$2" '{print $c}'; }
spread() { sort -g "$WORK/$1.times" | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s-%s s", lo, hi}'; }
said() {
	{ grep -i -m1 'cache\|unchanged\|up to date' "$LAST_LOG"; grep -m1 'already in place' "$LAST_LOG"; } |
		sed 's/^/   the tool said: /' || true
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.3f", a / b; else print "n/a"}'; }
bytes_of() { du -sb --apparent-size "$@" | awk '{s += $1} END {print s}'; }

# project DIR: a copy of the shipped recipes, overlays and the default base
# (stand-ins where `make` has not built it: the build packages it, never boots it).
project() {
	local d=$1
	mkdir -p "$d/out/base"
	cp -r "$ROOT/recipes" "$ROOT/overlays" "$d/"
	if [ -f "$ROOT/out/base/vmlinuz" ] && [ -f "$ROOT/out/base/initrd.img" ]; then
		cp "$ROOT/out/base/vmlinuz" "$ROOT/out/base/initrd.img" "$d/out/base/"
	else
		printf 'stand-in kernel\n' >"$d/out/base/vmlinuz"
		printf 'stand-in initrd\n' >"$d/out/base/initrd.img"
	fi
}
# bench_recipe SHIPPED KEY_TYPE: the shipped recipe with files: and images:
# from the bench payload (sha256 pinned) and the ISO and PXE outputs only.
bench_recipe() {
	local shipped=$1 key_type=$2 src dest mode
	sed -n '1,/^pki:/p' "$shipped" | sed "s|^pki: { dir: \.\./keys }|pki: { dir: ../keys, key_type: $key_type }|"
	echo
	sed -n '/^config:/,/^$/p' "$shipped"
	echo "files:"
	while read -r src dest mode; do
		printf '  - { src: %s, dest: %s, mode: "%s", sha256: %s }\n' "$PAYLOAD/$src" "$dest" "$mode" \
			"$(grep -m1 " $src\$" "$PAYLOAD/SHA256SUMS" | cut -d' ' -f1)"
	done <"$PAYLOAD/files.list"
	echo "images:"
	while read -r src; do
		printf '  - { src: %s, sha256: %s }\n' "$PAYLOAD/$src" "$(grep -m1 " $src\$" "$PAYLOAD/SHA256SUMS" | cut -d' ' -f1)"
	done <"$PAYLOAD/images.list"
	grep '^overlays:' "$shipped"
	printf 'outputs:\n  pxe: { path: ../out/pxe }\n  iso: { path: ../out/%s.iso, max_size: 4G }\n' \
		"$(sed -n 's/^name: *//p' "$shipped")"
}

# ---- the master project and the hand pipeline's inputs -------------------
P=$WORK/master
project "$P"
bench_recipe "$ROOT/recipes/master.recipe" rsa >"$P/recipes/master.recipe.new"
mv "$P/recipes/master.recipe.new" "$P/recipes/master.recipe"
grep -q '^pki: { dir: \.\./keys, key_type: rsa }' "$P/recipes/master.recipe" ||
	die "recipes/master.recipe's pki: line is not '{ dir: ../keys }': update bench_recipe in $prog"
"$MK" render "$P/recipes/master.recipe" >"$WORK/render.txt" 2>"$LOGS/render" ||
	{ cat "$LOGS/render" >&2; die "the bench's master recipe does not render (above)"; }

node_line() { sed -n "/^$1:/,/^[a-z]/p" "$ROOT/recipes/cluster.yaml" | sed -n 's/.*hostname: *\([^,]*\), *ip: *\([^,}]*\).*/\1=\2/p' | tr -d ' "'; }
masters=$(node_line masters | tr '\n' ' ') etcd=$(node_line etcd | tr '\n' ' ') workers=$(node_line workers | tr '\n' ' ')
first=${masters%% *} node_host=${first%%=*} node_ip=${first#*=}
node_mac=$(grep -m1 "hostname: *$node_host," "$ROOT/recipes/cluster.yaml" | sed -n 's/.*mac: *"\([^"]*\)".*/\1/p')
[ -n "$node_host" ] && [ -n "$node_ip" ] && [ -n "$node_mac" ] ||
	die "cannot read the first master's hostname, ip and mac from recipes/cluster.yaml"

# The hand pipeline's sed templates: this build's rendered configs with the
# node's name and address taken out again.
T=$WORK/hand-templates
awk -v dir="$T" '
	/^# --- [^ ]+: \/[^ ]+ \(/ { f = dir $4; sub(/\/[^\/]*$/, "", f); system("mkdir -p \"" f "\""); out = dir $4; next }
	out { print > out }' "$WORK/render.txt"
[ -f "$T/var/lib/flatcar-install/user_data" ] && [ -f "$T/usr/share/oem/config.ign" ] ||
	die "render's output has no cloud-config or Ignition config: update the template split in $prog"
find "$T" -type f -exec sed -i -e "s/$node_host/@HOSTNAME@/g" -e "s/$node_ip/@IP@/g" {} +

# The hand pipeline hard-links the payload's files into its tree, which
# moves their ctime: the tool would take that as a change and hash them
# again in the rebuild measured next. It gets a copy of its own.
cp -r "$PAYLOAD" "$WORK/hand-payload"
cat >"$WORK/hand.conf" <<EOF
PAYLOAD='$WORK/hand-payload'
TEMPLATES='$T'
OVERLAYS='$(sed -n 's/^overlays: *\[\(.*\)\]/\1/p' "$P/recipes/master.recipe" | tr -d ' ' | tr ',' '\n' | sed "s|^\.\./|$P/|" | tr '\n' ' ')'
KERNEL='$P/out/base/vmlinuz'
INITRD='$P/out/base/initrd.img'
PAYLOAD_SCRIPT='$PAYLOAD_SCRIPT'
CMDLINE='$(sed -n 's/^ *cmdline: *"\(.*\)"/\1/p' "$P/recipes/master.recipe")'
RECIPE=master ROLE=master
CLUSTER='$(sed -n 's/^cluster_name: *//p' "$ROOT/recipes/cluster.yaml")'
DOMAIN=cluster.local SERVICE_IP=10.3.0.1
NODE_HOST='$node_host' NODE_IP='$node_ip' NODE_MAC='$node_mac'
MASTERS='$masters' ETCD='$etcd' WORKERS='$workers'
BOOT_ADDR=192.168.255.1 BOOT_RANGE=192.168.255.100,192.168.255.199,255.255.255.0 BOOT_ROOT=/srv/boot
LABEL=DLWS_MASTER LARGE=1048576
EOF
H=$WORK/hand
# A full build starts from nothing: no keys/, no outputs, no build cache
# (out/.cache today; everything in out/ but the base goes).
full_cmd=(bash -c 'rm -rf "$1/keys" "$XDG_CACHE_HOME" && find "$1/out" -mindepth 1 -maxdepth 1 ! -name base -exec rm -rf {} + &&
	exec "$2" "$1/recipes/master.recipe"' full "$P" "$MK")
hand_cmd=("$ROOT/bench/hand-pipeline.sh" "$WORK/hand.conf" "$H")

# ---- full build against the hand pipeline, in turn -------------------------
say "-- full build (keys/ and outputs removed first) and hand pipeline, in turn: 1 warm-up + $RUNS each"
measure warmup "${full_cmd[@]}"
measure warmup "${hand_cmd[@]}"
for _ in $(seq "$RUNS"); do
	measure full "${full_cmd[@]}"
	measure hand "${hand_cmd[@]}"
done
paste "$WORK/full.times" "$WORK/hand.times" | awk '{printf "%.3f\n", $1 / $3}' >"$WORK/full_hand.times"
full=$(median full) hand=$(median hand) full_hand=$(median full_hand)
rss_full=$(maxcol full 2)
say "   full build  median ${full} s ($(spread full)), peak RSS $((rss_full / 1024)) MiB"
say "   hand        median ${hand} s ($(spread hand))"
# The build's outputs (a .tar of the PXE tree only when a recipe asks).
outs=() houts=()
for f in pxe pxe.tar master.iso; do [ ! -e "$P/out/$f" ] || outs+=("$P/out/$f"); done
for f in pxe pxe.tar master.iso; do [ ! -e "$H/$f" ] || houts+=("$H/$f"); done
tool_bytes=$(bytes_of "${outs[@]}")
hand_bytes=$(bytes_of "${houts[@]}")
say "   bytes written: build $((tool_bytes / 1000000)) MB, hand $((hand_bytes / 1000000)) MB"

# ---- rebuilds ----------------------------------------------------------------
say "-- no-change rebuild: $RUNS runs"
for _ in $(seq "$RUNS"); do measure nochange "$MK" "$P/recipes/master.recipe"; done
nochange=$(median nochange)
say "   median ${nochange} s ($(spread nochange))"
said

say "-- one-template-change rebuild (a comment added to templates/containerd-config.toml): $RUNS runs"
for i in $(seq "$RUNS"); do
	printf '# bench edit %s\n' "$i" >>"$P/recipes/templates/containerd-config.toml"
	measure template "$MK" "$P/recipes/master.recipe"
done
template=$(median template)
say "   median ${template} s ($(spread template))"
said

say "-- full build with keys/ kept (outputs and build cache removed): what a build costs beyond making keys: $RUNS runs"
kept_cmd=(bash -c 'rm -rf "$XDG_CACHE_HOME" && find "$1/out" -mindepth 1 -maxdepth 1 ! -name base -exec rm -rf {} + &&
	exec "$2" "$1/recipes/master.recipe"' kept "$P" "$MK")
for _ in $(seq "$RUNS"); do measure kept "${kept_cmd[@]}"; done
kept=$(median kept)
say "   median ${kept} s ($(spread kept))"

# ---- the I/O floor -------------------------------------------------------------
say "-- cp of the build's output bytes ($(for o in "${outs[@]}"; do printf '%s\n' "${o##*/}"; done | paste -sd' ')): $RUNS runs"
cp_cmd=(bash -c 'd=$1 && shift && rm -rf "$d" && mkdir "$d" && exec cp -r "$@" "$d/"' cp "$WORK/cp-floor" "${outs[@]}")
measure cpwarm "${cp_cmd[@]}"
for _ in $(seq "$RUNS"); do measure cp "${cp_cmd[@]}"; done
cpf=$(median cp)
say "   median ${cpf} s ($(spread cp))"
# The build's outputs are on disk when it ends (it syncs before putting
# them in place); cp's are in the page cache. The same, made durable:
say "-- cp of the same bytes, then sync (durable, as the build's outputs are): $RUNS runs"
cps_cmd=(bash -c 'd=$1 && shift && rm -rf "$d" && sync && mkdir "$d" && cp -r "$@" "$d/" && exec sync' cps "$WORK/cp-floor" "${outs[@]}")
for _ in $(seq "$RUNS"); do measure cps "${cps_cmd[@]}"; done
rm -rf "$WORK/cp-floor"
cps=$(median cps)
say "   median ${cps} s ($(spread cps))"

# ---- 1,000 nodes -------------------------------------------------------------
big=n/a bigmac=n/a bigip=n/a rss_big=0
if [ "$NODES" -gt 0 ]; then
	say "-- $NODES MAC-listed workers, ECDSA keys: build, then rebuilds after one worker's MAC, then another's IP changed (1 run each)"
	B=$WORK/cluster
	project "$B"
	for r in master etcd; do
		sed -i 's|^pki: { dir: \.\./keys }|pki: { dir: ../keys, key_type: ecdsa }|' "$B/recipes/$r.recipe"
	done
	bench_recipe "$ROOT/recipes/worker.recipe" ecdsa >"$B/recipes/worker.recipe.new"
	mv "$B/recipes/worker.recipe.new" "$B/recipes/worker.recipe"
	"$ROOT/bench/cluster1000.sh" "$NODES" "$B/recipes/cluster.yaml"
	measure big "$MK" "$B/recipes/worker.recipe"
	big=$(median big)
	say "   build ${big} s"
	said
	"$ROOT/bench/cluster1000.sh" "$NODES" "$B/recipes/cluster.yaml" $(( (NODES + 1) / 2 ))
	measure bigmac "$MK" "$B/recipes/worker.recipe"
	bigmac=$(median bigmac)
	say "   rebuild after one worker's MAC changed ${bigmac} s"
	said
	"$ROOT/bench/cluster1000.sh" "$NODES" "$B/recipes/cluster.yaml" $(( (NODES + 1) / 2 )) "$NODES"
	measure bigip "$MK" "$B/recipes/worker.recipe"
	bigip=$(median bigip)
	say "   rebuild after one worker's IP changed ${bigip} s"
	said
	for n in big bigmac bigip; do r=$(maxcol "$n" 2); [ "$r" -gt "$rss_big" ] && rss_big=$r; done
	say "   peak RSS $((rss_big / 1024)) MiB"
fi

# ---- summary -------------------------------------------------------------------
rss_all=$rss_full
for n in nochange template kept; do r=$(maxcol "$n" 2); [ "$r" -gt "$rss_all" ] && rss_all=$r; done
[ "$rss_big" -gt "$rss_all" ] && rss_all=$rss_big
r_hand=$full_hand
r_nochange=$(ratio "$nochange" "$full")
r_template=$(ratio "$template" "$full")
r_cp=$(ratio "$full" "$cpf")
r_cps=$(ratio "$full" "$cps")
r_kept=$(ratio "$kept" "$cps")
rss_mib=$(awk -v k="$rss_all" 'BEGIN {printf "%.1f", k / 1024}')
verdict() {	# VALUE OP LIMIT
	awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
		if (v == "n/a") { print "n/a"; exit }
		ok = (op == "<=") ? (v <= l) : (v < l); print ok ? "met" : "NOT met" }'
}
LOAD_END=$(load)
say ""
say "== summary (scale $SCALE, payload $(awk -v b="$payload_bytes" 'BEGIN {printf "%.0f MB", b / 1e6}'), medians of $RUNS; load average $LOAD_START at start, $LOAD_END at end)"
printf '%-46s %12s %10s  %s\n' "figure" "measured" "target" "verdict"
row() { printf '%-46s %12s %10s  %s\n' "$1" "$2" "$3 $4" "$(verdict "$2" "$3" "$4")"; }
row "full build / hand pipeline (pairwise median)" "$r_hand" "<=" 0.5
row "no-change rebuild / full build" "$r_nochange" "<=" 0.05
row "one-template-change rebuild / full build" "$r_template" "<=" 0.1
row "full build / cp of its output bytes" "$r_cp" "<=" 3
printf '%-46s %12s %10s  %s\n' "full build / (cp + sync)" "$r_cps" "-" "(the same floor, durable)"
printf '%-46s %12s %10s  %s\n' "full build, keys kept / (cp + sync)" "$r_kept" "-" "(no keys to make)"
row "peak RSS of any build, MiB" "$rss_mib" "<" 64
if [ "$NODES" -gt 0 ]; then
	printf '%-46s %12s %10s  %s\n' "$NODES-node build, s" "$big" "-" "(no target)"
	row "$NODES-node rebuild, one worker's MAC changed, s" "$bigmac" "<" 2
	row "$NODES-node rebuild, one worker's IP changed, s" "$bigip" "<" 2
fi
printf '%-46s %12s\n' "full build, s" "$full"
printf '%-46s %12s\n' "hand pipeline, s" "$hand"
printf '%-46s %12s\n' "no-change rebuild, s" "$nochange"
printf '%-46s %12s\n' "one-template-change rebuild, s" "$template"
printf '%-46s %12s\n' "full build, keys kept, s" "$kept"
printf '%-46s %12s\n' "cp of the output bytes, s" "$cpf"
printf '%-46s %12s\n' "cp of the output bytes, then sync, s" "$cps"
printf '%-46s %12s\n' "bytes written: build / hand, MB" "$((tool_bytes / 1000000)) / $((hand_bytes / 1000000))"
