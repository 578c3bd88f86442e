#!/bin/sh
# Create or refresh .venv with the package installed (editable).
# Usage: scripts/venv.sh [EXTRAS]   e.g. scripts/venv.sh systemd,test
# Re-installs only when pyproject.toml changed or a requested extra is not
# installed yet; a venv that already has more extras is left as it is.
set -eu
cd "$(dirname "$0")/.."
extras=${1:-}
venv=.venv
stamp="$venv/.stem-installed"
sum=$(cksum < pyproject.toml)
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
have_sum=""; have_extras=""
if [ -f "$stamp" ]; then
    have_sum=$(sed -n 1p "$stamp")
    have_extras=$(sed -n 2p "$stamp")
fi
missing=""
if [ -n "$extras" ]; then
    for e in $(printf '%s' "$extras" | tr ',' ' '); do
        case ",$have_extras," in *",$e,"*) ;; *) missing="$missing $e" ;; esac
    done
fi
if [ "$have_sum" != "$sum" ] || [ -n "$missing" ]; then
    # Keep what was installed before and add what is asked for now.
    all=$(printf '%s,%s' "$have_extras" "$extras" | tr ',' '\n' | sed '/^$/d' | sort -u | paste -sd, -)
    spec=.
    [ -n "$all" ] && spec=".[$all]"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e "$spec"
    printf '%s\n%s\n' "$sum" "$all" > "$stamp"
fi
