#!/usr/bin/env bash
# Builds the container images (`make images`):
#   dispatch311-base:bookworm     Debian bookworm (debootstrap --variant=minbase), made
#                                 here because no registry is reached; skipped when
#                                 DISPATCH311_BASE_IMAGE names your own
#   dispatch311-{intake,routing,dispatch,survey,console,open311}
#                                 the services, the console and the Open311 gateway,
#                                 from deploy/Dockerfile:
#                                 the release binary, its libraries, CA certificates,
#                                 on scratch
#   dispatch311-{postgres,redis,prometheus}
#                                 the compose stack's servers, Debian's packages on
#                                 the same base (deploy/compose/<name>/)
# each tagged with the workspace version and `latest`.
#
# Runs `cargo build --release --workspace --bins` first; --no-build (or
# DISPATCH311_IMAGES_NO_BUILD=1) takes the binaries already in
# $CARGO_TARGET_DIR/release. --refresh-base makes the Debian base anew (Debian's
# latest security updates), and so every image on it. Installs and starts the container engine if needed
# (deploy/ensure-docker.sh). The debootstrap tree is cached as a tarball in
# $DISPATCH311_IMAGE_CACHE (~/.cache/dispatch311-images), so a machine that lost
# its images re-imports it instead of downloading Debian again.
#
# Settings: DISPATCH311_BASE_IMAGE (a Debian bookworm image of your registry),
# DISPATCH311_IMAGE_PREFIX (e.g. registry.example/dispatch311/), DISPATCH311_IMAGE_SOURCE
# (the org.opencontainers.image.source label; default: the git remote),
# DISPATCH311_DEBIAN_MIRROR (for debootstrap and apt inside the builds).
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

no_build=${DISPATCH311_IMAGES_NO_BUILD:-0}
refresh_base=0
for arg in "$@"; do
    case $arg in
    --no-build) no_build=1 ;;
    --refresh-base) refresh_base=1 ;;
    *) die "unknown option $arg (--no-build, --refresh-base)" ;;
    esac
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dispatch311-target}"
bin_dir="$CARGO_TARGET_DIR/release"
cache_dir="${DISPATCH311_IMAGE_CACHE:-$HOME/.cache/dispatch311-images}"
local_base=dispatch311-base:bookworm
base_image="${DISPATCH311_BASE_IMAGE:-$local_base}"
prefix="${DISPATCH311_IMAGE_PREFIX:-}"
mirror="${DISPATCH311_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

cd "$repo_root"
started=$SECONDS
# elapsed seconds per step, printed at the end
timings=()
step_started=$SECONDS
step_done() {
    timings+=("$(printf '%-34s %4d s' "$1" $((SECONDS - step_started)))")
    step_started=$SECONDS
}

version=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
[[ -n $version ]] || die "no version in Cargo.toml's [workspace.package]"
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# a build from a tree with uncommitted changes says so in its revision
if [[ $revision != unknown ]] && [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    revision="$revision-dirty"
fi
source_url="${DISPATCH311_IMAGE_SOURCE:-$(git config --get remote.origin.url 2>/dev/null || true)}"
if [[ -z $source_url ]]; then
    source_url=dispatch311
    say "no git remote: the images' source label is '$source_url' (set DISPATCH311_IMAGE_SOURCE)"
fi

if [[ $no_build == 1 ]]; then
    say "not building: taking the binaries in $bin_dir (--no-build)"
else
    say "building the release binaries (cargo build --release --workspace --bins, target dir $CARGO_TARGET_DIR)"
    cargo build --release --workspace --bins
    step_done "cargo build --release"
fi
for svc in "${processes[@]}" cli; do
    [[ -x $bin_dir/dispatch311-$svc ]] || die "$bin_dir/dispatch311-$svc is missing: run without --no-build"
done

"$deploy_dir/ensure-docker.sh"
step_done "container engine"

# The Debian base: debootstrap once (cached as a tarball), imported when the
# engine does not have it. Minbase plus CA certificates; apt sources with the
# security and point-release updates; no daemon starts inside a build.
make_base() {
    local tarball="$cache_dir/bookworm-minbase.tar" rootfs
    if [[ ! -s $tarball ]]; then
        command -v debootstrap >/dev/null || apt_install debootstrap
        mkdir -p "$cache_dir"
        rootfs=$(mktemp -d "$cache_dir/rootfs.XXXXXX")
        [[ $rootfs == "$cache_dir"/rootfs.* ]] || die "mktemp gave '$rootfs'"
        # shellcheck disable=SC2064 # the path is fixed now
        trap "as_root rm -rf '$rootfs'" EXIT
        say "making the Debian base with debootstrap (bookworm, minbase, from $mirror): a few minutes, once"
        as_root debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" >"$cache_dir/debootstrap.log" 2>&1 ||
            { tail -n 20 "$cache_dir/debootstrap.log" >&2; die "debootstrap failed (log: $cache_dir/debootstrap.log)"; }
        as_root tee "$rootfs/etc/apt/sources.list" >/dev/null <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${DISPATCH311_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security} bookworm-security main
EOF
        # packages installed in a build must not try to start their services
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$rootfs/usr/sbin/policy-rc.d" >/dev/null
        as_root chmod 755 "$rootfs/usr/sbin/policy-rc.d"
        # no documentation, manual pages or translations, now or from packages
        # installed later (the copyright files stay)
        printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
            'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/groff/*' \
            'path-exclude /usr/share/lintian/*' 'path-exclude /usr/share/locale/*' |
            as_root tee "$rootfs/etc/dpkg/dpkg.cfg.d/dispatch311-slim" >/dev/null
        as_root find "$rootfs/usr/share/doc" -mindepth 1 -not -type d -not -name copyright -delete
        as_root find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
        as_root rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
            "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
            "$rootfs"/var/log/*.log
        as_root tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
        as_root mv "$tarball.tmp" "$tarball"
        as_root rm -rf "$rootfs"
        trap - EXIT
        say "cached the base tree in $tarball ($(du -h "$tarball" | cut -f1))"
    fi
    say "importing $tarball as $local_base"
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        "$tarball" "$local_base" >/dev/null
}

if [[ $base_image == "$local_base" ]]; then
    if [[ $refresh_base == 1 ]]; then
        rm -f "$cache_dir/bookworm-minbase.tar"
        make_base
    elif docker image inspect "$local_base" >/dev/null 2>&1; then
        say "base image $local_base: present"
    else
        make_base
    fi
else
    say "base image: $base_image (DISPATCH311_BASE_IMAGE)"
fi
step_done "base image"

labels=(
    --build-arg "BASE_IMAGE=$base_image"
    --build-arg "VERSION=$version"
    --build-arg "REVISION=$revision"
    --build-arg "SOURCE=$source_url"
)
# builds run on the host's network: apt inside a build reaches the mirror as the
# host does, and nothing is published
build() {
    local name=$1
    shift
    local log="$cache_dir/logs/$name.log"
    say "building ${prefix}$name:$version"
    mkdir -p "$cache_dir/logs"
    if ! docker build --network host "${labels[@]}" \
        -t "${prefix}$name:$version" -t "${prefix}$name:latest" "$@" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "the build of $name failed (log: $log)"
    fi
}

# the images' build context: the four services' binaries, the console's and the
# gateway's, nothing else
context="$cache_dir/context/services"
rm -rf "$context"
mkdir -p "$context"
for svc in "${processes[@]}"; do
    # a hard link where the target dir is on the same filesystem, else a copy
    ln -f "$bin_dir/dispatch311-$svc" "$context/" 2>/dev/null || cp "$bin_dir/dispatch311-$svc" "$context/"
done
for svc in "${processes[@]}"; do
    build "dispatch311-$svc" -f "$deploy_dir/Dockerfile" --target "$svc" "$context"
done
step_done "service, console and gateway images"

# The Prometheus image carries the rules and a configuration whose targets are
# the compose services, console and gateway (intake:9151 … console:9155,
# open311:9156): the same template `make observe` uses.
# shellcheck source=deploy/compose/lib.sh
source "$deploy_dir/compose/lib.sh"
prom_context="$cache_dir/context/prometheus"
rm -rf "$prom_context"
mkdir -p "$prom_context"
cp "$deploy_dir/prometheus/rules.yml" "$prom_context/"
render_prometheus_config "$prom_context/prometheus.yml" \
    intake=intake:9151 routing=routing:9152 dispatch=dispatch:9153 survey=survey:9154 console=console:9155 \
    open311=open311:9156
for name in postgres redis; do
    build "dispatch311-$name" "$deploy_dir/compose/$name"
done
build dispatch311-prometheus -f "$deploy_dir/compose/prometheus/Dockerfile" "$prom_context"
step_done "postgres, redis, prometheus images"
# the images these builds replaced, now untagged
docker image prune -f --filter label=org.opencontainers.image.vendor=dispatch311 >/dev/null

echo
echo "images (${prefix:-no registry prefix}, version $version, revision $revision):"
for name in "${processes[@]}" postgres redis prometheus; do
    docker image ls --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' "${prefix}dispatch311-$name:$version"
done
[[ $base_image == "$local_base" ]] && docker image ls --format '  {{.Repository}}:{{.Tag}}  {{.Size}} (base)' "$local_base"
echo "time:"
printf '  %s\n' "${timings[@]}"
printf '  %-34s %4d s\n' total $((SECONDS - started))
echo "run them: make compose-up (deploy/compose/README.md)"
