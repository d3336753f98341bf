<?php
# MediaWiki settings of the lxctool MediaWiki stack. `lxctool up` renders this one file (Jinja2
# fills in addresses, then the stack's secrets) and pushes the same text to every web replica, so they share
# the database, the secret key and the caches: any replica can answer any request.
# wiki-install moves it into place once the database schema exists.
if ( !defined( 'MEDIAWIKI' ) ) {
	exit;
}

$wgSitename = "Lab Wiki";
$wgMetaNamespace = "Lab_Wiki";
# the address the load balancer is published on (stack.yaml: loadbalancer.publish)
$wgServer = "http://127.0.0.1:8080";
$wgScriptPath = "";
# http://127.0.0.1:8080/ answers 200 with the main page (not a 301 to /index.php?title=Main_Page)
$wgMainPageIsDomainRoot = true;
$wgResourceBasePath = $wgScriptPath;
$wgLogos = [ '1x' => "$wgResourceBasePath/resources/assets/change-your-logo.svg" ];

$wgDBtype = "mysql";
$wgDBserver = "{{ services.database.ipv4 }}";
$wgDBname = "wiki";
$wgDBuser = "wiki";
$wgDBpassword = '${DB_PASSWORD}';
$wgDBTableOptions = "ENGINE=InnoDB, DEFAULT CHARSET=binary";

# Several servers, one wiki: caches and sessions live in the shared database (production would
# use memcached). A per-replica cache (APCu) would let a replica serve what another one changed.
$wgMainCacheType = CACHE_DB;
$wgSessionCacheType = CACHE_DB;
$wgParserCacheType = CACHE_DB;

# the same key on every replica: tokens and session cookies made by one are valid on the other
$wgSecretKey = '${WIKI_SECRET_KEY}';
$wgAuthenticationTokenVersion = "1";

$wgLanguageCode = "en";
$wgLocaltimezone = "UTC";
$wgEnableEmail = false;
$wgEnableUploads = false;
# nothing leaves the private network: no Commons images, no usage pingback
$wgUseInstantCommons = false;
$wgPingback = false;
$wgDiff3 = "/usr/bin/diff3";

wfLoadSkin( 'Vector' );
$wgDefaultSkin = "vector";
# anonymous editing stays on (MediaWiki's default): the lab edits through the API without a login
