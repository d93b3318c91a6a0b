#!/usr/bin/env bash
# Makes a bare Debian machine ready to run Clud and its tests: rsync, a Docker engine that
# answers, and a base image for the Dockerfile's FROM even where no registry can be reached.
# Idempotent: every step checks first and does nothing when its part is already there.
set -euo pipefail

BASE_IMAGE="${CLUD_BASE_IMAGE:-debian:trixie-slim}"
log() { echo "[provision] $*" >&2; }

need_apt=()
command -v rsync >/dev/null || need_apt+=(rsync)
command -v getfattr >/dev/null || need_apt+=(attr)   # the undo log's tests compare extended attributes
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || need_apt+=(docker.io)
fi
if ((${#need_apt[@]})); then
  log "installing ${need_apt[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "provision: need root to install ${need_apt[*]}" >&2; exit 1; fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  log "starting dockerd (log: /tmp/dockerd.log)"
  nohup dockerd >/tmp/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "provision: dockerd did not answer within 60 s; see /tmp/dockerd.log" >&2; tail -20 /tmp/dockerd.log >&2; exit 1; }
fi
log "docker engine $(docker version --format '{{.Server.Version}}')"

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  if timeout 60 docker pull "$BASE_IMAGE" >/dev/null 2>&1; then
    log "pulled $BASE_IMAGE"
  else
    # No registry: build the same Debian release from the machine's own package archive.
    log "cannot pull $BASE_IMAGE; bootstrapping it from Debian's archive (about 30 s)"
    command -v debootstrap >/dev/null || { apt-get update -q; DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; }
    suite="${BASE_IMAGE#*:}"; suite="${suite%-slim}"
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    mirror="${mirror:-http://deb.debian.org/debian}"
    rootfs=$(mktemp -d /tmp/clud-rootfs.XXXXXX)
    debootstrap --variant=minbase --include=ca-certificates "$suite" "$rootfs" "$mirror" >/tmp/debootstrap.log 2>&1 \
      || { echo "provision: debootstrap failed; see /tmp/debootstrap.log" >&2; tail -20 /tmp/debootstrap.log >&2; exit 1; }
    tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    log "imported $BASE_IMAGE"
  fi
fi
