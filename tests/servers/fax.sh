#!/usr/bin/env bash
# Install what the fax channel needs at run time and in tests: Tesseract OCR (English data is
# included in tesseract-ocr on Debian) and poppler-utils (pdftoppm renders PDF faxes, pdftotext
# reads our reply PDFs back in tests). Idempotent. Debian 12 (bookworm) packages.
set -euo pipefail

need=()
command -v tesseract >/dev/null 2>&1 || need+=(tesseract-ocr)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
if [ "${#need[@]}" -eq 0 ]; then
  echo "fax: already installed ($(tesseract --version 2>&1 | head -1), $(pdftoppm -v 2>&1 | head -1))"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
# shellcheck disable=SC2068
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $(printf '%s\n' ${need[@]} | sort -u)
command -v tesseract >/dev/null && command -v pdftoppm >/dev/null
tesseract --list-langs 2>/dev/null | grep -qx eng
echo "fax: installed"
