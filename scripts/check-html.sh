#!/usr/bin/env bash
# Loads a pinlat report.html in headless Chromium (Debian's `chromium` package), takes a
# screenshot, and fails when the page logged anything to the console (the page has no script,
# so any console message — a failed resource load, a CSP refusal, a parse error — is a defect)
# or tried to reach the network.
#
# usage: scripts/check-html.sh REPORT.html [SCREENSHOT.png]
set -euo pipefail
html=${1:?usage: check-html.sh REPORT.html [SCREENSHOT.png]}
shot=${2:-${html%.html}.png}
[ -f "$html" ] || { echo "check-html: $html: no such file" >&2; exit 2; }
command -v chromium >/dev/null || { echo "check-html: chromium missing: apt-get install -y chromium" >&2; exit 2; }
abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
profile=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$profile" "$log"' EXIT
timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile" \
    --enable-logging=stderr --v=0 --screenshot="$shot" --window-size=1400,3000 \
    "file://$abs" >"$log" 2>&1 || { cat "$log" >&2; echo "check-html: chromium failed" >&2; exit 1; }
[ -s "$shot" ] || { cat "$log" >&2; echo "check-html: no screenshot written" >&2; exit 1; }
if grep -E ':CONSOLE[:(]|Uncaught|Failed to load resource|Refused to|net::ERR_' "$log" >&2; then
    echo "check-html: console errors in $html" >&2
    exit 1
fi
echo "check-html: $html loaded with no console errors; screenshot $shot"
