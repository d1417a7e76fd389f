#!/usr/bin/env bash
# Installs the Debian packages that source/endpoint/daemons_test.go and
# nginx_test.go need: real STARTTLS daemons, and nginx stapling OCSP
# responses, that the tests start themselves, on loopback high ports, with
# configurations and certificates they write to temporary directories. Also
# Chromium, which inventory/browser_test.go runs headless against the
# inventory pages (CERTWATCH_SKIP_BROWSER_TESTS=1 skips that test instead),
# and a Java runtime for keytool, which makes the JCEKS keystores the
# keystore tests read.
#
# Idempotent: packages already installed are skipped, so a second run takes
# well under a second. Must run as root on Debian (12 "bookworm" is what the
# tests were written against). Nothing it installs is left running or enabled
# as a system service: the tests start private instances of the daemons.
#
# Without these packages the daemon tests fail with a pointer to this script;
# set CERTWATCH_SKIP_DAEMON_TESTS=1 to skip them instead.
set -euo pipefail

# package -> what the tests use it for
packages=(
	postfix        # SMTP STARTTLS
	dovecot-imapd  # IMAP STARTTLS (pulls dovecot-core)
	dovecot-pop3d  # POP3 STLS
	postgresql     # PostgreSQL SSLRequest (initdb, postgres)
	slapd          # LDAP StartTLS extended operation
	vsftpd         # FTP AUTH TLS
	mariadb-server # MySQL protocol SSL (mariadbd)
	nginx          # OCSP stapling from a file and from a responder (source/endpoint/nginx_test.go)
	podman         # container image test (deploy/container): make image + inspect
	buildah
	openssl        # cross-check of the trust store's dates
	openjdk-17-jre-headless # keytool: the tests make JCEKS keystores with it (internal/testpki/keytool.go)
	chromium       # inventory/browser_test.go drives the inventory pages in headless Chromium (chromedp)
)
# init scripts / units of those packages, stopped and disabled when this
# script installed them
services=(postfix dovecot postgresql slapd vsftpd mariadb nginx)

if [ "$(id -u)" != 0 ]; then
	echo "$0: must run as root (it installs Debian packages with apt-get)" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
	echo "$0: needs a Debian-based system with apt-get" >&2
	exit 1
fi

missing=()
for p in "${packages[@]}"; do
	if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "test dependencies already installed: ${packages[*]}"
	exit 0
fi
echo "installing: ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive
# Answer the questions that would otherwise stop the installation: Postfix and
# slapd get no system configuration at all (the tests write their own).
debconf-set-selections <<'EOF'
postfix postfix/main_mailer_type select No configuration
postfix postfix/mailname string localhost
slapd slapd/no_configuration boolean true
EOF

# Keep maintainer scripts from starting the daemons (sysvinit or systemd both
# honour policy-rc.d). Only a policy file this script created is removed.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# written by certwatch .ci/install-test-deps.sh for the duration of apt-get\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi

apt_install() {
	apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}
# Refresh the package lists first: images often carry stale ones whose
# package versions have left the mirror (404). Only runs when installing.
apt-get update -q -o DPkg::Lock::Timeout=300
apt_install "${missing[@]}"

# Make sure none of the freshly installed daemons runs or starts at boot as a
# system service. Packages that were already installed are left as they were.
for s in "${services[@]}"; do
	case " ${missing[*]} " in
	*" $s"*) ;; # installed now (postfix, dovecot-*, postgresql, slapd, vsftpd, mariadb-*, nginx)
	*) continue ;;
	esac
	if [ -d /run/systemd/system ]; then
		systemctl disable --now "$s" >/dev/null 2>&1 || true
	else
		if [ -x "/etc/init.d/$s" ]; then
			"/etc/init.d/$s" stop >/dev/null 2>&1 || true
		fi
		update-rc.d "$s" disable >/dev/null 2>&1 || true
	fi
done
echo "installed: ${missing[*]}"
