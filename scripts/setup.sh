#!/usr/bin/env bash
# Set up GemPix in ./.venv. Torch goes first, so the torch range in requirements.txt is then
# already satisfied and pip never swaps it for another build. With --dev, also the test tools
# and Debian's Chromium for the browser tests (Playwright cannot download a browser here).
#   TORCH_SPEC   torch requirement(s) to install first, split on spaces (default
#                "torch==2.13.0": a CPU build, about 1 GB, that pip takes from local disk on
#                our CI machines; set it for a GPU build, see README)
#   PYTHON       interpreter that creates the venv (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}

[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

# Split on purpose: TORCH_SPEC may hold several requirements or pip options (--index-url URL).
read -r -a torch_args <<< "$torch_spec"
"${pip[@]}" "${torch_args[@]}"
"${pip[@]}" -r requirements.txt -e .

if [ "${1:-}" = "--dev" ]; then
  "${pip[@]}" -r requirements-dev.txt
  if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    else
      echo "Browser tests need Debian's chromium: sudo apt-get install -y chromium" >&2
    fi
  fi
fi
