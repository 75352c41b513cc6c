#!/usr/bin/env bash
# Audits Portico's TLS setup with testssl.sh: starts Portico (built, from dist/) with a fresh test
# certificate on a loopback port, runs testssl.sh against it, and summarises every finding rated
# MEDIUM or worse, except certificate-trust findings that only say the test certificate is not
# from a public CA. Also shows whether h2 is offered and HSTS is set.
# Usage: npm run check:tls   (needs: testssl (Debian package "testssl.sh"), openssl, jq)
# Exit status: 0 when nothing MEDIUM or worse remains, 1 otherwise, 2 on a setup problem.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in testssl openssl jq; do
  command -v "$tool" >/dev/null || { echo "check-tls: '$tool' is not installed (apt-get install testssl.sh openssl jq)" >&2; exit 2; }
done
[ -f dist/src/cli/index.js ] || { echo "check-tls: build first (npx tsc -p .)" >&2; exit 2; }

KEY_TYPE="${CHECK_TLS_KEY:-ec}"   # ec (P-256) or rsa (2048)
tmp="$(mktemp -d)"
portico_pid=""
cleanup() {
  if [ -n "$portico_pid" ]; then kill "$portico_pid" 2>/dev/null || true; wait "$portico_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# A self-signed test certificate for "localhost" (the only finding expected from it: not trusted).
if [ "$KEY_TYPE" = rsa ]; then newkey=(-newkey rsa:2048); else newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); fi
openssl req -x509 "${newkey[@]}" -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 365 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null

cat > "$tmp/portico.yaml" <<YAML
server:
  listen: ["127.0.0.1:0"]
  https:
    listen: ["127.0.0.1:0"]
    hsts: { max_age: 31536000, include_subdomains: true }
    security_headers: true
tls:
  certificates:
    - { cert: "$tmp/cert.pem", key: "$tmp/key.pem" }
routes:
  - name: hello
    match: {}
    respond: { status: 200, body: "hello from portico\n" }
log:
  access: { enabled: false }
  error: { level: info, path: stdout }
YAML

node dist/src/cli/index.js run --config "$tmp/portico.yaml" > "$tmp/portico.log" 2>&1 &
portico_pid=$!
port=""
for _ in $(seq 1 100); do
  port="$(grep -o '"https://127.0.0.1:[0-9]*"' "$tmp/portico.log" 2>/dev/null | head -1 | grep -o '[0-9]*"$' | tr -d '"' || true)"
  [ -n "$port" ] && break
  kill -0 "$portico_pid" 2>/dev/null || { echo "check-tls: portico did not start:" >&2; cat "$tmp/portico.log" >&2; exit 2; }
  sleep 0.1
done
[ -n "$port" ] || { echo "check-tls: no HTTPS port in the log" >&2; cat "$tmp/portico.log" >&2; exit 2; }
echo "check-tls: Portico on https://127.0.0.1:$port ($KEY_TYPE test certificate); running testssl.sh $(testssl --version 2>/dev/null | grep -o 'testssl *[0-9.]*' | head -1 | awk '{print $2}') …"

# --ip pins the address; "localhost" is the SNI name. Warnings off: no prompts in CI.
testssl --quiet --color 0 --warnings off --nodns min --ip 127.0.0.1 \
  --jsonfile "$tmp/result.json" "localhost:$port" > "$tmp/testssl.txt" 2>&1 || true
[ -s "$tmp/result.json" ] || { echo "check-tls: testssl.sh produced no results:" >&2; tail -30 "$tmp/testssl.txt" >&2; exit 2; }
cp "$tmp/result.json" "${CHECK_TLS_JSON:-/dev/null}" 2>/dev/null || true

# Certificate-trust findings that only reflect a self-signed test certificate, not Portico.
cert_only='^(cert_chain_of_trust|cert_trust|cert_caIssuers|cert_crlDistributionPoints|cert_ocspURL|OCSP_stapling|cert_mustStapleExtension|DNS_CAArecord|cert_certificatePolicies_EV|cert_expirationStatus|cert_validityPeriod|cert_extlifeSpan|certs_list_ordering_problem|cert_notAfter|cert_notBefore|cert_trust_.*|cert_chain_of_trust_.*|cert_eTLS|cert_revocation.*)$'

findings="$(jq -r --arg skip "$cert_only" '
  .[] | select(.severity == "MEDIUM" or .severity == "HIGH" or .severity == "CRITICAL")
      | select(.id | test($skip) | not)
      | "  \(.severity)\t\(.id)\t\(.finding)"' "$tmp/result.json")"
skipped="$(jq -r --arg skip "$cert_only" '
  [.[] | select(.severity == "MEDIUM" or .severity == "HIGH" or .severity == "CRITICAL") | select(.id | test($skip))] | map(.id) | unique | join(", ")' "$tmp/result.json")"
h2="$(jq -r '[.[] | select(.id == "ALPN_HTTP2" or .id == "ALPN" or .id == "NPN")] | map("\(.id): \(.finding)") | join("; ")' "$tmp/result.json")"
hsts="$(jq -r '[.[] | select(.id == "HSTS" or .id == "HSTS_time" or .id == "HSTS_subdomains" or .id == "HSTS_preload")] | map("\(.id): \(.finding) [\(.severity)]") | join("; ")' "$tmp/result.json")"
protocols="$(jq -r '[.[] | select(.id | test("^(SSLv2|SSLv3|TLS1|TLS1_1|TLS1_2|TLS1_3)$")) | "\(.id)=\(.finding)"] | join(", ")' "$tmp/result.json")"
counts="$(jq -r 'group_by(.severity) | map("\(.[0].severity): \(length)") | join(", ")' "$tmp/result.json")"

echo
echo "== testssl.sh summary =="
echo "protocols:  $protocols"
echo "ALPN:       ${h2:-not reported}"
echo "HSTS:       ${hsts:-not reported}"
echo "all findings by severity: $counts"
[ -n "$skipped" ] && echo "ignored (test certificate not from a public CA): $skipped"
if [ -n "$findings" ]; then
  echo "MEDIUM or worse:"
  echo "$findings"
  status=1
else
  echo "MEDIUM or worse: none"
  status=0
fi
echo "$h2" | grep -q 'h2' || { echo "check-tls: h2 is not offered" >&2; status=1; }
echo "$hsts" | grep -q "HSTS_time: [0-9]" || { echo "check-tls: HSTS is not set" >&2; status=1; }
exit "$status"
