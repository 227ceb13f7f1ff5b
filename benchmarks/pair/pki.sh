# benchmarks/pair/pki.sh — sourced by run.sh and users.sh (after
# scripts/lib.sh, for random_hex).
#
# make_pki DIR: a throwaway CA and two leaf certificates, ECDSA P-256,
# valid for a day, in DIR. Every B presents server.crt (b.pqrelay.test,
# 127.0.0.1) and demands a client certificate from the CA; every A
# presents client.crt.
make_pki() {
	mkdir -p "$1"
	(
		cd "$1"
		newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
		newkey ca.key
		openssl req -x509 -new -key ca.key -sha256 -days 1 -subj "/CN=pqrelay bench CA" \
			-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
			-out ca.crt 2>/dev/null
		leaf() { # leaf NAME CN EXTENDED-USAGE SAN
			newkey "$1.key"
			openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr" 2>/dev/null
			printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
				"extendedKeyUsage=$3" "subjectAltName=$4" >"$1.ext"
			openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(random_hex 8)" \
				-days 1 -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
			cat "$1.crt" "$1.key" >"$1.pem" # HAProxy wants both in one file
		}
		leaf server b.pqrelay.test serverAuth "DNS:b.pqrelay.test,IP:127.0.0.1"
		leaf client a.pqrelay.test clientAuth "DNS:a.pqrelay.test"
		openssl verify -CAfile ca.crt server.crt client.crt >/dev/null
	)
}
