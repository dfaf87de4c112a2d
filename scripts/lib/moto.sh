# Sourced by scripts/demo and bench/*: run moto (the AWS emulator) on a free loopback port and
# point the AWS SDK at it. Needs .venv (scripts/setup-python).

moto_start() {
  local port
  port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  MOTO_DIR=$(mktemp -d)
  .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$MOTO_DIR/moto.log" 2>&1 &
  MOTO_PID=$!
  trap moto_stop EXIT
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_MAX_ATTEMPTS=1
  export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent
  unset AWS_PROFILE AWS_SESSION_TOKEN
  # Warm it: the first request imports moto's service modules.
  echo "app: warm" >"$MOTO_DIR/warm.yaml"
  "$DEPLOYER" status -s "$MOTO_DIR/warm.yaml" >/dev/null
}

moto_stop() {
  [[ -n ${MOTO_PID:-} ]] && kill "$MOTO_PID" 2>/dev/null && wait "$MOTO_PID" 2>/dev/null
  [[ -n ${MOTO_DIR:-} ]] && rm -rf "$MOTO_DIR"
  MOTO_PID=
}

# A placeholder artifact: moto stores Lambda code but never runs it.
placeholder_zip() {
  .venv/bin/python - "$1" <<'PY'
import sys, zipfile
info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
info.external_attr = 0o100755 << 16
info.compress_type = zipfile.ZIP_DEFLATED
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(info, "#!/bin/sh\n# placeholder: moto does not run Lambda code\n")
PY
}
