/*
 * hosts.h - which hosts a credential may be sent to (allowedHosts).
 *
 * An entry is a host name ("api.example.com"), a wildcard of its
 * subdomains ("*.example.com": any name that ends in ".example.com", at
 * any depth, but not "example.com" itself), or either with a port
 * ("api.example.com:8443": that port only; without one, any port). Names
 * compare without regard to ASCII case and a trailing dot; nothing else is
 * converted: an internationalised name is matched in the form written
 * (punycode "xn--..." matches punycode), never translated. IPv6 literals
 * are written in brackets ("[::1]:8080").
 */
#ifndef AOP_CREDENTIALS_HOSTS_H
#define AOP_CREDENTIALS_HOSTS_H

#include <jansson.h>
#include <stdbool.h>

#define CREDENTIALS_HOSTS_MAX 50    /* entries of one allowedHosts */
#define CREDENTIALS_HOST_MAX 261    /* bytes of one entry: a name, ':' and a port */

/* Whether s is a well-formed entry (see above). */
bool credentials_host_entry_ok(const char *s);
/* Whether entry allows host (as a URL holds it, brackets of IPv6 kept)
 * on port (the URL's, or its scheme's default). */
bool credentials_host_matches(const char *entry, const char *host, int port);
/* Whether the host and port of url match an entry of hosts (a JSON array
 * of strings); false for a URL without a host. */
bool credentials_url_allowed(const json_t *hosts, const char *url);

#endif
