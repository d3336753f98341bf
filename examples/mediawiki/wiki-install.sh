#!/bin/sh
# Provisioning of a MediaWiki replica (run by `lxctool up` in each web container).
# Replica 1 creates the database schema once with MediaWiki's maintenance/install.php; every
# other replica waits for that schema. Then each puts the stack's shared LocalSettings.php in
# place. Re-running is harmless: an installed schema is never installed again (so the wiki
# survives recreating the web tier, and `down`/`up` with the database volume kept).
# Reads /etc/mediawiki/stack.env (pushed by `up`, mode 0600): DB_HOST DB_NAME DB_USER DB_PASSWORD
# WIKI_ADMIN_PASSWORD. Passwords reach install.php in files, never on a command line.
set -eu
. /etc/mediawiki/stack.env
export DB_HOST DB_NAME DB_USER DB_PASSWORD
staged=/etc/mediawiki/LocalSettings.stack.php
say() { echo "wiki-install ($(hostname)): $*" >&2; }

schema() {  # exit 0: schema installed, 1: database reachable but empty, 2: not reachable
	php -r '
	mysqli_report(MYSQLI_REPORT_OFF);
	$db = @new mysqli(getenv("DB_HOST"), getenv("DB_USER"), getenv("DB_PASSWORD"), getenv("DB_NAME"));
	if ($db->connect_errno) { fwrite(STDERR, $db->connect_error . "\n"); exit(2); }
	$r = $db->query("SHOW TABLES LIKE \"page\"");
	exit($r && $r->num_rows ? 0 : 1);'
}

state=2
for _ in $(seq 240); do  # the database may still be starting: up to 120 s
	state=0; schema 2>/tmp/wiki-install.err || state=$?
	[ "$state" = 2 ] || break
	sleep 0.5
done
[ "$state" != 2 ] || { say "database $DB_HOST unreachable: $(cat /tmp/wiki-install.err)"; exit 1; }

case "$(hostname)" in
*-1)
	if [ "$state" = 1 ]; then
		say "installing the schema into $DB_NAME on $DB_HOST"
		scratch=$(mktemp -d)
		trap 'rm -rf "$scratch"' EXIT
		umask 077
		printf '%s' "$DB_PASSWORD" > "$scratch/dbpass"
		printf '%s' "$WIKI_ADMIN_PASSWORD" > "$scratch/pass"
		# without --installdbuser it installs as the wiki's own user (no root login over the network);
		# install.php writes its own LocalSettings.php into the scratch folder: the stack's
		# shared file replaces it, so the secret key is the stack's, the same on every replica
		php /usr/share/mediawiki/maintenance/install.php --dbtype mysql --dbserver "$DB_HOST" \
			--dbname "$DB_NAME" --dbuser "$DB_USER" --dbpassfile "$scratch/dbpass" \
			--passfile "$scratch/pass" --server "http://127.0.0.1:8080" --scriptpath "" \
			--lang en --skins Vector --confpath "$scratch" "Lab Wiki" Admin >&2
	else
		say "schema already in $DB_NAME: not installing again"
	fi ;;
*)
	for _ in $(seq 600); do  # replica 1 installs: up to 300 s
		schema 2>/dev/null && break
		sleep 0.5
	done
	schema || { say "no schema in $DB_NAME after 300 s (replica 1 installs it)"; exit 1; } ;;
esac

install -o root -g www-data -m 0640 "$staged" /etc/mediawiki/LocalSettings.php
say "LocalSettings.php in place"
