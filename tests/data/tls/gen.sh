#!/bin/sh
# Generates the TLS test material (CAs, server/client certificates, an expired and a wrong-name
# certificate) with the openssl CLI into a directory, by default $TDM_BUILD_DIR/tls-test or
# build/tls-test. Private keys are made at test time and never committed. Idempotent and safe to run
# from several test processes at once: material is built in a scratch directory and renamed into place.
#
#   ca.pem ca.key             test CA "tandem test CA"
#   ca2.pem ca2.key           an unrelated CA (the "wrong CA")
#   server.{pem,key}          CN=localhost, SAN DNS:localhost IP:127.0.0.1, from ca
#   server2.{pem,key}         CN=tandem-rotated, same SANs, from ca (certificate rotation)
#   other.{pem,key}           CN=other.example, SAN DNS:other.example only, from ca (name mismatch)
#   expired.{pem,key}         SANs as server, from ca, valid 2020-01-01..2020-01-02 (expired)
#   server_ca2.{pem,key}      SANs as server, from ca2 (unknown CA for clients trusting ca)
#   client.{pem,key}          CN=tandem-client, clientAuth, from ca
#   client_ca2.{pem,key}      CN=stranger, clientAuth, from ca2 (untrusted client certificate)
#   garbage.pem               not PEM at all
set -eu
VERSION=2
OUT=${1:-${TDM_BUILD_DIR:-build}/tls-test}
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$VERSION" ]; then
  exit 0
fi
PARENT=$(dirname "$OUT")
mkdir -p "$PARENT"
TMP=$(mktemp -d "$PARENT/.tls-gen.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

ca() { # name subject
  key "$1"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out "$1.pem" 2>/dev/null
}

leaf() { # name subject issuer san eku
  key "$1"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=%s\n' "$5" > "$1.ext"
  if [ -n "$4" ]; then printf 'subjectAltName=%s\n' "$4" >> "$1.ext"; fi
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 3650 -sha256 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}

ca ca "tandem test CA"
ca ca2 "tandem other CA"
SAN="DNS:localhost,IP:127.0.0.1"
leaf server localhost ca "$SAN" serverAuth
leaf server2 tandem-rotated ca "$SAN" serverAuth
leaf other other.example ca "DNS:other.example" serverAuth
leaf server_ca2 localhost ca2 "$SAN" serverAuth
leaf client tandem-client ca "" clientAuth
leaf client_ca2 stranger ca2 "" clientAuth

# The expired certificate: `openssl x509` cannot back-date in OpenSSL 3.0, `openssl ca` can.
key expired
openssl req -new -key expired.key -subj "/CN=localhost" -out expired.csr 2>/dev/null
mkdir -p ca-db
: > ca-db/index.txt
echo 1000 > ca-db/serial
cat > ca-db/ca.cnf <<CNF
[ ca ]
default_ca = test
[ test ]
dir = ca-db
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = leaf
[ any ]
commonName = supplied
[ leaf ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $SAN
CNF
openssl ca -batch -notext -config ca-db/ca.cnf -in expired.csr -startdate 20200101000000Z \
  -enddate 20200102000000Z -out expired.pem 2>/dev/null

printf 'this is not a PEM file\n' > garbage.pem
rm -rf ca-db ./*.csr ./*.ext ./*.srl
chmod 600 ./*.key
echo "$VERSION" > stamp

# Publish: the first finisher wins; a concurrent run finds the stamp and leaves its copy behind.
if [ -d "$OUT" ] && { [ ! -f "$OUT/stamp" ] || [ "$(cat "$OUT/stamp")" != "$VERSION" ]; }; then
  rm -rf "$OUT"
fi
if ! mv -T "$TMP" "$OUT" 2>/dev/null; then
  [ -f "$OUT/stamp" ] || { echo "gen.sh: cannot publish $OUT" >&2; exit 1; }
fi
trap - EXIT
rm -rf "$TMP"
