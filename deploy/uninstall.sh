#!/usr/bin/env bash
# Remove the fleetnas agent: sudo ./uninstall.sh [--purge]. Without --purge the token, settings, model cache and
# the service user are kept, so a later install.sh picks up where this one left off.
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/install.sh" --uninstall "$@"
