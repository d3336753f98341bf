#!/bin/sh
# Measure the smallest limits.memory and limits.processes with which an image still starts here:
# the container runs, gets its IPv4 on lxctool0 and runs `true` through exec.
# Usage: scripts/measure-floors.sh IMAGE memory|processes VALUE...   (one line per value)
# Creates containers named rlfloor-<pid>-N and deletes each one right after its try.
set -u
image=$1 kind=$2; shift 2
wait_s=${FLOOR_WAIT:-20}
n=0
for value in "$@"; do
    n=$((n + 1)); name="rlfloor-$$-$n"
    if [ "$kind" = memory ]; then key=limits.memory; else key=limits.processes; fi
    verdict=fail
    if lxc init "$image" "$name" -p lxctool -c "$key=$value" >/dev/null 2>&1 &&
       lxc start "$name" >/dev/null 2>&1; then
        i=0
        while [ $i -lt "$wait_s" ]; do
            if lxc list "$name" --format csv -c 4 | grep -q '10\.'; then
                sleep 2
                if lxc exec "$name" -- true 2>/dev/null &&
                   [ "$(lxc list "$name" --format csv -c s)" = RUNNING ]; then verdict=ok; fi
                break
            fi
            sleep 1; i=$((i + 1))
        done
    fi
    echo "$image $key=$value $verdict"
    lxc delete -f "$name" >/dev/null 2>&1 || { sleep 2; lxc delete -f "$name" >/dev/null 2>&1; }
done
