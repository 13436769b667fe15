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
    ORC_LDAP_CONNECTION_LOST = 8, // orc_ldap_check_on: the server closed the connection (retry on a new one)
};

/// Opens a connection to `url` (LDAPv3, no referrals, `timeout_seconds` for connecting and each operation; ldaps://
/// trusts `ca_file` when given), bound as `bind_dn` when given. Blocking. On ORC_LDAP_OK `*ld_out` is the connection
/// (close it with orc_ldap_close); otherwise ORC_LDAP_UNREACHABLE, ORC_LDAP_SEARCH_BIND or ORC_LDAP_ERROR, and a message.
int orc_ldap_open(const char *url, const char *ca_file, const char *bind_dn, const char *bind_password, int timeout_seconds,
                  void **ld_out, char *err, size_t err_capacity);
void orc_ldap_close(void *ld);
/// Shuts the connection's socket down, as a server that drops an idle connection does (for tests). 1 when done.
int orc_ldap_break(void *ld);
/// Looks a user up on `search_ld` (a connection bound as the search account, or anonymous) and, when `user_password`
/// is given, binds on `bind_ld` as the entry found (which may be the same connection; a connection used for a user's
/// bind is bound as that user afterwards). `filter` is complete and already escaped. `disabled_filter` (may be empty)
/// marks entries that may not sign in; with a password it is checked only after the bind succeeded (DISABLED is never
/// the answer to a wrong password). Blocking. The entry's DN is copied to `dn_out`, a message to `err`.
/// ORC_LDAP_CONNECTION_LOST when the server had closed a connection.
int orc_ldap_check_on(void *search_ld, void *bind_ld, const char *base_dn, const char *filter, const char *disabled_filter,
                      const char *user_password, int timeout_seconds, char *dn_out, size_t dn_capacity,
                      char *err, size_t err_capacity);
/// The DNs of every entry under `base_dn` that `filter` matches (subtree, paged by the server's size limit only), as a
/// malloc'ed string of DNs separated by newlines in `*dns_out` (free it with free()); `*count_out` entries. A search
/// account binds first when `bind_dn` is given. Returns an ORC_LDAP_* code (OK, UNREACHABLE, SEARCH_BIND or ERROR).
int orc_ldap_search_dns(const char *url, const char *ca_file, const char *bind_dn, const char *bind_password,
                        const char *base_dn, const char *filter, int timeout_seconds,
                        char **dns_out, int *count_out, char *err, size_t err_capacity);

#endif
