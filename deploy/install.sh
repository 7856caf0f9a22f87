#!/usr/bin/env bash
# Installs Streamlined Secure Comms as a systemd service on a Debian-like host.
#
#   sudo deploy/install.sh [--dry-run] [--prefix DIR] [--no-user] [--skip-deps]
#                          [--firewall [--metrics-allow CIDR[,CIDR…]]] [--public-port N]
#                          [--metrics-port N] [--no-systemctl]
#
# Layout (under --prefix, default /):
#   /opt/ssc                          the app: src/, config/, wasm/, package.json, bun.lock,
#                                     node_modules/ (production), bin/ssc (launcher)  root, 0755
#   /usr/local/bin/ssc                symlink to /opt/ssc/bin/ssc
#   /etc/ssc                          root:ssc 0750
#   /etc/ssc/production.toml          root:ssc 0640 (kept if present; the shipped one goes to .dist)
#   /etc/ssc/ssc.env                  root:ssc 0640 secrets, created once with a random admin token
#   /etc/ssc/tls                      root:ssc 0750 (cert.pem, key.pem: put them here)
#   /var/lib/ssc                      ssc:ssc 0750 data dir; keys/ 0700, key files 0600
#   /var/log/ssc                      ssc:ssc 0750 log dir
#   /etc/systemd/system/streamlined-secure-comms.service
#   /etc/nftables.d/streamlined-secure-comms.nft   (--firewall)
#
# Idempotent: re-running upgrades the app and the unit, keeps config, secrets and keys.
# --dry-run prints every planned action and changes nothing.
# --prefix DIR installs into DIR (a staging root or a test directory); paths written into the
#   unit and the launcher stay the runtime paths above. systemctl and nft are not touched.
# --no-user skips creating the `ssc` user and every chown (files stay owned by the caller).
# --skip-deps skips `bun install`; keys are then generated with the source checkout's ssc.
# See docs/OPERATIONS.md.
set -euo pipefail

readonly SERVICE=streamlined-secure-comms
readonly RUN_USER=ssc
readonly APP_DIR=/opt/ssc
readonly ETC_DIR=/etc/ssc
readonly DATA_DIR=/var/lib/ssc
readonly LOG_DIR=/var/log/ssc
readonly UNIT_DIR=/etc/systemd/system
readonly NFT_FILE=/etc/nftables.d/${SERVICE}.nft
readonly BUN_VERSION=1.4.5

source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=/
dry_run=0
create_user=1
skip_deps=0
firewall=0
use_systemctl=1
public_port=8443
metrics_port=9090
metrics_allow=""

usage() { sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --prefix) prefix=${2:?--prefix needs a directory}; shift ;;
    --prefix=*) prefix=${1#*=} ;;
    --no-user) create_user=0 ;;
    --skip-deps) skip_deps=1 ;;
    --firewall) firewall=1 ;;
    --metrics-allow) metrics_allow=${2:?--metrics-allow needs CIDRs}; shift ;;
    --public-port) public_port=${2:?}; shift ;;
    --metrics-port) metrics_port=${2:?}; shift ;;
    --no-systemctl) use_systemctl=0 ;;
    --source) source_dir=${2:?}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

case "$prefix" in
  /) root="" ;;
  /*) root=${prefix%/} ;;
  *) root=$(pwd)/${prefix%/} ;;
esac
# Outside the real root nothing on the host (systemctl, nft) is touched.
[ -n "$root" ] && use_systemctl=0
for port in "$public_port" "$metrics_port"; do
  [[ "$port" =~ ^[0-9]+$ ]] || { echo "install.sh: port must be a number: $port" >&2; exit 2; }
done
if [ ! -f "$source_dir/package.json" ] || [ ! -f "$source_dir/src/cli.ts" ]; then
  echo "install.sh: $source_dir is not a Streamlined Secure Comms checkout" >&2
  exit 2
fi
if [ "$dry_run" -eq 0 ] && [ "$create_user" -eq 1 ] && [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: creating the $RUN_USER user and setting owners needs root (or pass --no-user)" >&2
  exit 2
fi

umask 022
owner_args=()
[ "$create_user" -eq 1 ] && owner_args=(-o root -g "$RUN_USER")

say() { printf '%s\n' "$*"; }
# Runs a command, or only prints it under --dry-run.
run() {
  if [ "$dry_run" -eq 1 ]; then say "would run: $*"; else say "+ $*"; "$@"; fi
}
# Writes stdin to a file with a mode, or prints what it would write.
write_file() {
  local path=$1 mode=$2 content
  content=$(cat)
  if [ "$dry_run" -eq 1 ]; then say "would write: $path (mode $mode)"; return; fi
  say "+ write $path (mode $mode)"
  printf '%s\n' "$content" >"$path.tmp.$$"
  chmod "$mode" "$path.tmp.$$"
  mv -f "$path.tmp.$$" "$path"
}
# Creates a directory (or fixes an existing one) with mode and owner.
directory() {
  local path=$1 mode=$2 owner=${3:-}
  if [ "$create_user" -eq 1 ] && [ -n "$owner" ]; then
    run install -d -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$path"
  else
    run install -d -m "$mode" "$path"
  fi
}
set_owner() {
  [ "$create_user" -eq 1 ] && run chown "$@"
  return 0
}

[ "$dry_run" -eq 1 ] && say "dry run: nothing will be changed"
say "installing from $source_dir into ${root:-/}"

# 1. The service user: a system account with no login and no home of its own.
if [ "$create_user" -eq 1 ]; then
  if getent passwd "$RUN_USER" >/dev/null; then
    say "user $RUN_USER exists"
  else
    run useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home \
      --shell /usr/sbin/nologin --comment "Streamlined Secure Comms" "$RUN_USER"
  fi
fi

# 2. Bun. Debian has no package; npm's is the project's supported route (see README).
bun_bin=$(command -v bun || true)
if [ -z "$bun_bin" ]; then
  command -v npm >/dev/null || { echo "install.sh: neither bun nor npm found; apt-get install npm first" >&2; exit 2; }
  run npm install -g "bun@$BUN_VERSION"
  bun_bin=$(command -v bun || echo "$(npm prefix -g)/bin/bun")
else
  say "bun found: $bun_bin ($("$bun_bin" --version))"
fi

# 3. Directories with their owners and modes.
directory "$root$APP_DIR" 0755
directory "$root$APP_DIR/bin" 0755
directory "$root/usr/local/bin" 0755
directory "$root$ETC_DIR" 0750 "root:$RUN_USER"
directory "$root$ETC_DIR/tls" 0750 "root:$RUN_USER"
directory "$root$DATA_DIR" 0750 "$RUN_USER:$RUN_USER"
directory "$root$DATA_DIR/keys" 0700 "$RUN_USER:$RUN_USER"
directory "$root$LOG_DIR" 0750 "$RUN_USER:$RUN_USER"
directory "$root$UNIT_DIR" 0755

# 4. The app. Replaced wholesale on every run (that is the upgrade); WASM is copied prebuilt.
wasm_built=$(find "$source_dir/wasm/build" -maxdepth 1 -name '*.wasm' 2>/dev/null | head -n1)
if [ -z "$wasm_built" ]; then
  if [ "$skip_deps" -eq 0 ] && [ -d "$source_dir/node_modules/assemblyscript" ]; then
    run sh -c "cd '$source_dir' && '$bun_bin' run build:wasm"
  else
    say "warning: $source_dir/wasm/build has no .wasm; run 'bun install && bun run build:wasm' in the checkout and re-run"
  fi
fi
directory "$root$APP_DIR/wasm" 0755
directory "$root$APP_DIR/docs" 0755
for item in src config wasm/assembly wasm/build wasm/build.ts package.json bun.lock asconfig.json tsconfig.json docs/OPERATIONS.md; do
  [ -e "$source_dir/$item" ] || continue
  run rm -rf "$root$APP_DIR/$item"
  run cp -R -p "$source_dir/$item" "$root$APP_DIR/$item"
done
run chmod -R u+rwX,go+rX,go-w "$root$APP_DIR"

if [ "$skip_deps" -eq 0 ]; then
  # --ignore-scripts: postinstall would rebuild the WASM with AssemblyScript, a dev dependency;
  # the build was copied above.
  run sh -c "cd '$root$APP_DIR' && '$bun_bin' install --production --frozen-lockfile --ignore-scripts"
else
  say "skipping bun install (--skip-deps)"
fi

# The launcher: runtime paths, the production config unless --config is given.
write_file "$root$APP_DIR/bin/ssc" 0755 <<EOF
#!/bin/sh
# ssc — written by deploy/install.sh. Run as the service user: sudo -u $RUN_USER ssc …
cd $APP_DIR || exit 1
export NODE_ENV="\${NODE_ENV:-production}"
export BUN_RUNTIME_TRANSPILER_CACHE_PATH="\${BUN_RUNTIME_TRANSPILER_CACHE_PATH:-0}"
case " \$* " in
  *" --config "* | *" --config="*) exec $bun_bin $APP_DIR/src/cli.ts "\$@" ;;
esac
exec $bun_bin $APP_DIR/src/cli.ts "\$@" --config $ETC_DIR/production.toml
EOF
if [ -L "$root/usr/local/bin/ssc" ] || [ ! -e "$root/usr/local/bin/ssc" ]; then
  run ln -sfn "$APP_DIR/bin/ssc" "$root/usr/local/bin/ssc"
fi

# 5. Configuration and secrets: installed once, never overwritten.
config="$root$ETC_DIR/production.toml"
if [ -e "$config" ]; then
  if cmp -s "$config" "$source_dir/config/production.toml"; then
    say "config $config is current"
  else
    say "config $config kept (local changes); the shipped one is written to production.toml.dist"
    run install -m 0640 "${owner_args[@]}" "$source_dir/config/production.toml" "$config.dist"
  fi
  run chmod 0640 "$config"
  set_owner "root:$RUN_USER" "$config"
else
  run install -m 0640 "${owner_args[@]}" "$source_dir/config/production.toml" "$config"
fi

env_file="$root$ETC_DIR/ssc.env"
if [ -e "$env_file" ]; then
  say "secrets $env_file kept"
  run chmod 0640 "$env_file"
else
  admin_token=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
  write_file "$env_file" 0640 <<EOF
# Secrets and per-host overrides for $SERVICE, read by systemd (EnvironmentFile=).
# Mode 0640 root:$RUN_USER. Any key of the config: SSC_<SECTION>__<KEY>=value.
SSC_SECURITY__ADMIN_TOKEN=$admin_token
# SSC_CHANNEL__TOKENS=["a-bearer-token-of-16-or-more-chars"]
# SSC_BROKER__REDIS__URL=redis://:password@127.0.0.1:6379
# SSC_NODE_ID=node-a
# No certificate yet? Serve plain HTTP on the public port (behind a TLS proxy only):
# SSC_SERVER__TLS__CERT=
# SSC_SERVER__TLS__KEY=
EOF
fi
set_owner "root:$RUN_USER" "$env_file"

# 6. The unit.
run install -m 0644 "$source_dir/deploy/systemd/$SERVICE.service" "$root$UNIT_DIR/$SERVICE.service"

# 7. Node keys: generated once; `ssc keygen --force` (docs/OPERATIONS.md) rotates them.
if [ -e "$root$DATA_DIR/keys/identity.json" ] || [ -e "$root$DATA_DIR/keys/static.json" ]; then
  say "node keys present in $root$DATA_DIR/keys"
else
  keygen_app="$root$APP_DIR"
  if [ "$skip_deps" -eq 1 ] && [ ! -d "$keygen_app/node_modules" ]; then keygen_app=$source_dir; fi
  keygen=("$bun_bin" "$keygen_app/src/cli.ts" keygen --config "$config" --data-dir "$root$DATA_DIR")
  if [ "$create_user" -eq 1 ]; then keygen=(runuser -u "$RUN_USER" -- "${keygen[@]}"); fi
  run env -C "$keygen_app" NODE_ENV=production BUN_RUNTIME_TRANSPILER_CACHE_PATH=0 "${keygen[@]}"
fi

# 8. Firewall (optional): public port open, ops port only from the scrape network.
if [ "$firewall" -eq 1 ]; then
  allow="127.0.0.0/8"
  [ -n "$metrics_allow" ] && allow="$allow, ${metrics_allow//,/, }"
  directory "$root/etc/nftables.d" 0755
  write_file "$root$NFT_FILE" 0644 <<EOF
#!/usr/sbin/nft -f
# $SERVICE: written by deploy/install.sh --firewall. Loading it again replaces the table.
# Persist by adding to /etc/nftables.conf:  include "/etc/nftables.d/*.nft"
table inet $SERVICE
delete table inet $SERVICE
table inet $SERVICE {
  chain input {
    type filter hook input priority filter; policy accept;
    tcp dport $public_port accept comment "public: channels, API, ETSI 014"
    tcp dport $metrics_port ip saddr { $allow } accept comment "ops: metrics and probes"
    tcp dport $metrics_port ip6 saddr ::1 accept
    tcp dport $metrics_port drop comment "ops port closed to everyone else"
  }
}
EOF
  if [ -z "$root" ]; then
    if command -v nft >/dev/null; then run nft -f "$NFT_FILE"; else say "warning: nft not found (apt-get install nftables); rules written, not loaded"; fi
  fi
fi

# 9. systemd.
if [ "$use_systemctl" -eq 1 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  run systemctl daemon-reload
  run systemctl enable "$SERVICE.service"
else
  say "not calling systemctl (prefix install, --no-systemctl, or systemd not running)"
fi

say "done. Next: put the TLS certificate in $ETC_DIR/tls/ (or see ssc.env), review $ETC_DIR/production.toml, then"
say "  systemctl restart $SERVICE && curl -fsS http://127.0.0.1:$metrics_port/ready"
