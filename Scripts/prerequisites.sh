# Installs the Debian packages Extrapolate needs that this machine lacks. Sourced by Scripts/demo, Scripts/test and
# .ci/run; `prerequisites build` (the daemon and the command) or `prerequisites test` (also what the tests use).
#
# As root it runs apt-get; otherwise sudo (which may ask for your password); without either it prints the one
# command to run and stops. A package already installed is never touched, so a second run costs a few dpkg look-ups.

# Debian packages by purpose:
#   build: pkg-config finds the C libraries; libzstd-dev (token datasets), libopenblas-dev (matrix products),
#          libsqlite3-dev (the daemon's result store, through GRDB); git resolves the Swift packages.
#   test:  zstd (a test decodes our files with the reference tool), bc (Tests/kill-test.sh), util-linux's setpriv
#          (unreadable-checkpoint tests as root), qemu-user (Tests/qemu-check.sh), chromium + fonts-liberation (the
#          browser test of the page), systemd (systemd-analyze verifies Service/extrapolate.service), postgresql
#          (a throw-away cluster for the fleet's tests: Scripts/postgres-cluster; the system service is not used),
#          wrk (Benchmarks/server_load loads the server from a second process).
extrapolate_packages_build="git pkg-config libzstd-dev libopenblas-dev libsqlite3-dev"
extrapolate_packages_test="zstd bc util-linux qemu-user chromium fonts-liberation systemd postgresql wrk"

extrapolate_missing() {
    local missing="" package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q '^install ok installed$' ||
            missing="$missing $package"
    done
    printf '%s' "${missing# }"
}

prerequisites() {
    local wanted="$extrapolate_packages_build"
    [ "${1:-build}" = test ] && wanted="$wanted $extrapolate_packages_test"
    if ! command -v dpkg-query >/dev/null 2>&1; then
        # Not Debian: check the libraries through pkg-config and name them if absent.
        if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libzstd openblas sqlite3; then return 0; fi
        echo "Extrapolate needs libzstd, OpenBLAS and SQLite with their headers, and pkg-config (Debian:" \
            "$extrapolate_packages_build). Install them with your system's package manager, then run this again." >&2
        return 1
    fi
    local missing
    missing=$(extrapolate_missing $wanted)
    [ -z "$missing" ] && return 0
    local install="apt-get install -y --no-install-recommends $missing"
    echo "installing what this machine lacks: $missing" >&2
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive $install >/dev/null || {
            echo "apt-get failed; run it yourself to see why: apt-get update && $install" >&2
            return 1
        }
    elif command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
        sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            sudo env DEBIAN_FRONTEND=noninteractive $install >/dev/null || {
            echo "apt-get failed; run it yourself to see why: sudo apt-get update && sudo $install" >&2
            return 1
        }
    else
        echo "Missing Debian packages: $missing. Run as root:  apt-get update && $install   then this again." >&2
        return 1
    fi
}
