#ifndef ORCHARD_LDAP_H
#define ORCHARD_LDAP_H
#include <stddef.h>

/// Outcomes of the orc_ldap_* calls.
enum {
    ORC_LDAP_OK = 0,
    ORC_LDAP_NOT_FOUND = 1,      // no entry matches the user filter
    ORC_LDAP_AMBIGUOUS = 2,      // more than one entry matches
    ORC_LDAP_WRONG_PASSWORD = 3, // the user's bind was refused (invalid credentials)
    ORC_LDAP_DISABLED = 4,       // the entry matches the disabled filter
    ORC_LDAP_UNREACHABLE = 5,    // no connection, a timeout, or the server went away
    ORC_LDAP_SEARCH_BIND = 6,    // the search account's bind was refused (configuration)
    ORC_LDAP_ERROR = 7,          // anything else (the message says what)
    ORC_LDAP_CONNECTION_LOST = 8, // the server closed the connection (retry on a new one)
    ORC_LDAP_SIZE_LIMIT = 9,     // orc_ldap_search: more entries than the size limit
    ORC_LDAP_NO_SUCH_OBJECT = 10, // orc_ldap_search: the base DN does not exist
};

/// Opens a connection to `url` (LDAPv3, no referrals, `timeout_seconds` for connecting and each operation; ldaps://
/// trusts `ca_file` when given), bound as `bind_dn` when given. Blocking. On ORC_LDAP_OK `*ld_out` is the connection
/// (close it with orc_ldap_close); otherwise ORC_LDAP_UNREACHABLE, ORC_LDAP_SEARCH_BIND or ORC_LDAP_ERROR, and a message.
int orc_ldap_open(const char *url, const char *ca_file, const char *bind_dn, const char *bind_password, int timeout_seconds,
                  void **ld_out, char *err, size_t err_capacity);
void orc_ldap_close(void *ld);
/// Shuts the connection's socket down, as a server that drops an idle connection does (for tests). 1 when done.
int orc_ldap_break(void *ld);
/// Searches `base_dn` (its subtree, or itself only with `base_only`) for `filter` (complete, already escaped), at most
/// `size_limit` entries (0: the server's limit). Blocking. On ORC_LDAP_OK the DNs, each followed by a newline, are a
/// malloc'ed string in `*dns_out` (free it with free()), `*count_out` of them; otherwise ORC_LDAP_SIZE_LIMIT,
/// ORC_LDAP_NO_SUCH_OBJECT, ORC_LDAP_UNREACHABLE, ORC_LDAP_CONNECTION_LOST or ORC_LDAP_ERROR, and a message.
int orc_ldap_search(void *ld, const char *base_dn, int base_only, const char *filter, int timeout_seconds, int size_limit,
                    char **dns_out, int *count_out, char *err, size_t err_capacity);
/// A simple bind as `dn` with `password` on `ld` (the connection is bound as that entry afterwards). ORC_LDAP_OK,
/// ORC_LDAP_WRONG_PASSWORD (invalid credentials), or a failure code and a message.
int orc_ldap_bind(void *ld, const char *dn, const char *password, char *err, size_t err_capacity);
#endif
