#!/usr/bin/env bash
# Build the release tarball that deploy/ansible installs on lab hosts, and print its path.
#
#   scripts/release-tarball.sh [--out DIR] [--debug]     # default DIR: target/dist
#
# --debug packs the dev-profile runner (target/debug/pinlat, which the test suite has built)
# instead of the release one, and says so in the name (…-debug-x86_64-linux) and BUILDINFO: for
# tests of the packaging and the playbook, where a release build would only cost time. The
# agent is the static release build either way.
#
# DIR/pinlat-<version>-g<commit>[-dirty]-x86_64-linux.tar.gz holds one directory of that name:
#   bin/pinlat         the release runner (dynamically linked against glibc: hosts need this
#                      build machine's glibc or newer)
#   bin/pinlat-agent   the static guest agent (scripts/build-agent.sh), beside pinlat, where
#                      pinlat looks for it first
#   configs/           the example configs, README.md
#   BUILDINFO          version, commit, target, rustc, build time (KEY=value lines)
#   MANIFEST           sha256sum lines for every other file (`sha256sum --check MANIFEST`)
# and DIR/<name>.tar.gz.sha256 the tarball's own checksum, in sha256sum format.
#
# One commit gives the same bytes: entries sorted, owned by root, mtime = the commit's time
# (or $SOURCE_DATE_EPOCH), gzip without a timestamp. A tree with uncommitted changes is marked
# "-dirty" in the name and in BUILDINFO.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/dist
profile=release
while [ $# -gt 0 ]; do
    case "$1" in
    --out)
        [ $# -ge 2 ] || { echo "release-tarball: --out needs a directory" >&2; exit 2; }
        out=$2
        shift 2
        ;;
    --debug)
        profile=debug
        shift
        ;;
    -h | --help)
        # The comment block under the shebang, and nothing after it.
        awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
        exit 0
        ;;
    *)
        echo "release-tarball: unknown argument '$1' (usage: scripts/release-tarball.sh [--out DIR] [--debug])" >&2
        exit 2
        ;;
    esac
done

if [ "$profile" = release ]; then
    cargo build --release --locked -p pinlat-runner >&2
else
    cargo build --locked -p pinlat-runner >&2
fi
pinlat=${CARGO_TARGET_DIR:-target}/$profile/pinlat
agent=$(scripts/build-agent.sh)

version=$("$pinlat" --version | awk '{print $2}')
if [ -z "$version" ]; then
    echo "release-tarball: '$pinlat --version' printed no version" >&2
    exit 3
fi
if git rev-parse --git-dir >/dev/null 2>&1; then
    commit=$(git rev-parse HEAD)
    short=g$(git rev-parse --short=12 HEAD)
    epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
    if git diff --quiet HEAD -- 2>/dev/null; then dirty=false; else dirty=true; short+=-dirty; fi
    mapfile -d '' configs < <(git ls-files -z configs)
else
    commit=unknown
    short=gunknown
    epoch=${SOURCE_DATE_EPOCH:-0}
    dirty=unknown
    mapfile -d '' configs < <(find configs -type f -print0)
fi
[ "$profile" = release ] || short+=-$profile
name="pinlat-$version-$short-x86_64-linux"

mkdir -p "$out"
stage=$(mktemp -d "$out/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root="$stage/$name"
install -d -m 0755 "$root/bin"
install -m 0755 "$pinlat" "$root/bin/pinlat"
install -m 0755 "$agent" "$root/bin/pinlat-agent"
install -m 0644 README.md "$root/README.md"
for f in "${configs[@]}"; do
    install -D -m 0644 "$f" "$root/$f"
done
cat >"$root/BUILDINFO" <<EOF
name=$name
version=$version
commit=$commit
dirty=$dirty
profile=$profile
target=x86_64-unknown-linux-gnu
rustc=$(rustc --version)
built_at=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
EOF
chmod 0644 "$root/BUILDINFO"
(cd "$root" && find . -type f ! -name MANIFEST -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 sha256sum >MANIFEST)
chmod 0644 "$root/MANIFEST"

tarball="$out/$name.tar.gz"
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
    -C "$stage" -cf - "$name" | gzip -n -9 >"$stage/$name.tar.gz"
mv "$stage/$name.tar.gz" "$tarball"
(cd "$out" && sha256sum "$name.tar.gz" >"$stage/sum" && mv "$stage/sum" "$name.tar.gz.sha256")
echo "release-tarball: $tarball ($(stat -c %s "$tarball") bytes)" >&2
realpath "$tarball"
