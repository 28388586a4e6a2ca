#!/usr/bin/env bash
# Builds the .deb (target/debian/tcp-lab_<version>-1_<arch>.deb) with cargo-deb and checks what it
# installs. The man pages (en, ko) and the completions are made by the very binary being packaged,
# into a folder made afresh here and removed after, so the package never carries stale ones and a
# bare `cargo deb` fails for want of them rather than ship old ones. Not in .ci/run: installing
# cargo-deb and the release build take several minutes on 2 cores (README: Install).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
cargo build --release --locked

target=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target/release/tcp-lab"
assets="$target/release/deb-assets"
rm -rf "$assets"
trap 'rm -rf "$assets"' EXIT
mkdir -p "$assets/man/en" "$assets/man/ko" "$assets/completions"
"$bin" man --lang en --dir "$assets/man/en" >/dev/null
"$bin" man --lang ko --dir "$assets/man/ko" >/dev/null
# Debian policy: man pages gzipped; -n keeps no name or time in them (the same bytes each build).
gzip -9n "$assets"/man/*/*.1
"$bin" completions bash --lang en >"$assets/completions/tcp-lab"
"$bin" completions zsh --lang en >"$assets/completions/_tcp-lab"
"$bin" completions fish --lang en >"$assets/completions/tcp-lab.fish"

deb=$(cargo deb --no-build --locked | tail -n 1)
echo "built $deb"

# What it installs, where Debian's tools look for it.
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
missing=0
for want in ./usr/bin/tcp-lab \
  ./usr/share/man/man1/tcp-lab.1.gz ./usr/share/man/man1/tcp-lab-watch.1.gz \
  ./usr/share/man/ko/man1/tcp-lab.1.gz ./usr/share/man/ko/man1/tcp-lab-watch.1.gz \
  ./usr/share/bash-completion/completions/tcp-lab \
  ./usr/share/zsh/vendor-completions/_tcp-lab \
  ./usr/share/fish/vendor_completions.d/tcp-lab.fish; do
  if ! grep -qxF "$want" <<<"$contents"; then
    echo "deb.sh: $deb lacks $want" >&2
    missing=1
  fi
done
[ "$missing" = 0 ] || exit 1
# The packaged page is this binary's: it names the same version and commit.
version=$("$bin" --version)
page=$(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/man/man1/tcp-lab.1.gz | gunzip |
  sed 's/\\-/-/g') # roff's escaped dashes
if ! grep -qF "v${version#tcp-lab }" <<<"$page"; then
  echo "deb.sh: the packaged man page is not the one of $version" >&2
  exit 1
fi
echo "contents ok: $(grep -c . <<<"$contents") entries"
