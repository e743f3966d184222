#!/usr/bin/env bash
# Install a one-node SLURM (Debian's slurm-wlm) and munge for tests/test_slurm.py.
#
# Idempotent: installs only what is missing, and makes `hostname -s` resolve (SLURM's
# NodeName must). It starts nothing: tests/slurm_cluster.py writes the configuration
# and starts/stops the daemons itself (there is no systemd here). Needs root.
set -euo pipefail

needed=(munged mungekey slurmctld slurmd sbatch squeue scontrol sinfo scancel)
missing=()
for bin in "${needed[@]}"; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done

node="$(hostname -s)"
if [ "${#missing[@]}" -eq 0 ] && getent hosts "$node" >/dev/null; then
    echo "install-slurm: slurm and munge installed, node $node resolves"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-slurm: not root, cannot install; tests/test_slurm.py will skip" >&2
    exit 1
fi

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-slurm: slurm and munge already installed"
else
    echo "install-slurm: missing ${missing[*]}; installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    # Package scripts must not try to start services (no init system here).
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created_policy=1
    fi
    trap '[ "$created_policy" -eq 0 ] || rm -f "$policy"' EXIT
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        slurm-wlm slurmctld slurmd slurm-client munge >/dev/null
    for bin in "${needed[@]}"; do
        command -v "$bin" >/dev/null 2>&1 || {
            echo "install-slurm: $bin still missing after apt-get install" >&2
            exit 1
        }
    done
fi

if ! getent hosts "$node" >/dev/null; then
    echo "install-slurm: adding '127.0.0.1 $node' to /etc/hosts (SLURM's NodeName must resolve)"
    printf '127.0.0.1 %s\n' "$node" >>/etc/hosts
fi
echo "install-slurm: $(slurmctld -V), $(munged --version 2>&1 | head -n1), node $node"
