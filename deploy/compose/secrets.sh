#!/usr/bin/env bash
# Creates what the compose services need and must not be committed:
#   secrets/session.key     intake's Ed25519 session signing key (PKCS#8 PEM)
#   secrets/notifier.key    the notifier's X25519 key (32-byte private || 32-byte public)
#   secrets/code-hmac.key   the certificate-code HMAC key (SE-7)
#   secrets/ca/             the CA files of the issuer: root.pem ica1.pem ica1.key data.key,
#                           copied from CA_SOURCE (default ../../var/ca, the dev CA `make run` creates)
#   .env                    passwords, tokens and the two public keys, for docker compose
# Key files are 0600 and, when run as root, owned by uid 65532 (the image's nonroot user).
# Usage: deploy/compose/secrets.sh [output dir, default deploy/compose]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
ca_source=${CA_SOURCE:-$here/../../var/ca}
umask 077
mkdir -p "$out/secrets/ca"
s=$out/secrets

[ -e "$s/session.key" ] || openssl genpkey -algorithm ed25519 -out "$s/session.key"
if [ ! -e "$s/notifier.key" ]; then
	tmp=$(mktemp)
	openssl genpkey -algorithm x25519 -out "$tmp"
	{ openssl pkey -in "$tmp" -outform DER | tail -c 32
	  openssl pkey -in "$tmp" -pubout -outform DER | tail -c 32; } >"$s/notifier.key"
	rm -f "$tmp"
fi
[ -e "$s/code-hmac.key" ] || openssl rand -hex 32 >"$s/code-hmac.key"
for f in root.pem ica1.pem ica1.key data.key; do
	if [ ! -e "$s/ca/$f" ]; then
		if [ -e "$ca_source/$f" ]; then
			cp "$ca_source/$f" "$s/ca/$f"
		else
			echo "secrets.sh: no $ca_source/$f: run \`make run\` once (it creates a dev CA in var/ca) or set CA_SOURCE to a CA directory" >&2
		fi
	fi
done
chmod 600 "$s"/*.key "$s"/ca/* 2>/dev/null || true

session_pub=$(openssl pkey -in "$s/session.key" -pubout -outform DER | tail -c 32 | base64)
notifier_pub=$(tail -c 32 "$s/notifier.key" | base64)
if [ ! -e "$out/.env" ]; then
	cat >"$out/.env" <<ENV
POSTGRES_PASSWORD=$(openssl rand -hex 16)
OPS_TOKENS=$(openssl rand -hex 24):admin
WEBHOOK_SECRET=$(openssl rand -hex 24)
INVOICE_REGISTRATION_NUMBER=T7000012050002
NOTIFIER_PUBLIC_KEY=$notifier_pub
SESSION_PUBLIC_KEY=$session_pub
PUBLIC_URL=http://localhost:8083
GRAFANA_ADMIN_PASSWORD=$(openssl rand -hex 12)
ENV
fi
if [ "$(id -u)" = 0 ]; then
	chown -R 65532:65532 "$s"
fi
echo "secrets in $s, compose variables in $out/.env"
