#!/usr/bin/env bash
# Installs what the web-chat browser tests need, idempotently, on Debian 12:
#   - Debian's chromium (driven by Playwright with executable_path=/usr/bin/chromium;
#     never `playwright install`, which downloads a browser),
#   - Playwright for Python in the project's venv,
#   - Firefox ESR (driven over WebDriver BiDi) and WebKitGTK's WebDriver + MiniBrowser on Xvfb,
#     so the visitor widget is also tested in Firefox's and Safari's engines,
#   - the official Node socket.io-client under tests/widget/node and the widget's build tools
#     (esbuild) under widget/visitor, both from their package-lock.json.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv_python="${VENV_PYTHON:-$here/.venv/bin/python}"
[ -x "$venv_python" ] || venv_python="$(command -v python3)"

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update
    apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}"
  fi
}

command -v chromium >/dev/null 2>&1 || apt_install chromium fonts-dejavu-core
command -v firefox-esr >/dev/null 2>&1 && command -v WebKitWebDriver >/dev/null 2>&1 \
  && command -v Xvfb >/dev/null 2>&1 || apt_install firefox-esr webkit2gtk-driver xvfb
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_install nodejs npm

if ! "$venv_python" -c "import playwright" >/dev/null 2>&1; then
  "$venv_python" -m pip install --quiet "playwright>=1.45"
fi

# the official Node client for the protocol tests, and esbuild for the widget build check
for dir in "$here/tests/widget/node" "$here/widget/visitor"; do
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
echo "browser test deps ready: $(chromium --version 2>/dev/null || echo 'chromium ?')," \
  "$(firefox-esr --version 2>/dev/null || echo 'firefox ?'), node $(node --version)"
