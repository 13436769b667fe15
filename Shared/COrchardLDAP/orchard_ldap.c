#define LDAP_DEPRECATED 0
#include "orchard_ldap.h"
#include <ldap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

static int fail(int code, int rc, const char *what, char *err, size_t cap) {
    snprintf(err, cap, "%s: %s", what, ldap_err2string(rc));
    return code;
}

static int transport_failure(int rc) {
    return rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT || rc == LDAP_CONNECT_ERROR || rc == LDAP_UNAVAILABLE
        || rc == LDAP_BUSY;
}

static int simple_bind(LDAP *ld, const char *dn, const char *password) {
    struct berval cred;
    cred.bv_val = (char *)(password ? password : "");
    cred.bv_len = password ? strlen(password) : 0;
    return ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
}

/// A connection to `url` (LDAPv3, no referrals, the timeouts, a private CA for ldaps), bound as the search account when
/// `bind_dn` is given. ORC_LDAP_OK, or the failure with `*ld` left for the caller to unbind (it may be NULL).
static int open_connection(LDAP **ld, const char *url, const char *ca_file, const char *bind_dn, const char *bind_password,
                           struct timeval *timeout, char *err, size_t err_capacity) {
    int rc = ldap_initialize(ld, url);
    if (rc != LDAP_SUCCESS) {
        *ld = NULL;
        return fail(ORC_LDAP_ERROR, rc, "directory URL", err, err_capacity);
    }
    int version = LDAP_VERSION3;
    ldap_set_option(*ld, LDAP_OPT_PROTOCOL_VERSION, &version);
    ldap_set_option(*ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    ldap_set_option(*ld, LDAP_OPT_NETWORK_TIMEOUT, timeout);
    ldap_set_option(*ld, LDAP_OPT_TIMEOUT, timeout);
    if (ca_file && ca_file[0]) {
        int demand = LDAP_OPT_X_TLS_DEMAND, new_ctx = 0;
        ldap_set_option(*ld, LDAP_OPT_X_TLS_CACERTFILE, ca_file);
        ldap_set_option(*ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
        ldap_set_option(*ld, LDAP_OPT_X_TLS_NEWCTX, &new_ctx);
    }
    if (bind_dn && bind_dn[0]) {
        rc = simple_bind(*ld, bind_dn, bind_password);
        if (rc != LDAP_SUCCESS) {
            return fail(transport_failure(rc) ? ORC_LDAP_UNREACHABLE : ORC_LDAP_SEARCH_BIND, rc, "search account bind", err, err_capacity);
        }
    }
    return ORC_LDAP_OK;
}

int orc_ldap_open(const char *url, const char *ca_file, const char *bind_dn, const char *bind_password, int timeout_seconds,
                  void **ld_out, char *err, size_t err_capacity) {
    LDAP *ld = NULL;
    err[0] = 0;
    *ld_out = NULL;
    struct timeval timeout = { timeout_seconds, 0 };
    int code = open_connection(&ld, url, ca_file, bind_dn, bind_password, &timeout, err, err_capacity);
    if (code != ORC_LDAP_OK) {
        if (ld) ldap_unbind_ext_s(ld, NULL, NULL);
        return code;
    }
    *ld_out = ld;
    return ORC_LDAP_OK;
}

void orc_ldap_close(void *ld) {
    if (ld) ldap_unbind_ext_s((LDAP *)ld, NULL, NULL);
}

int orc_ldap_break(void *ld) {
    int fd = -1;
    if (!ld || ldap_get_option((LDAP *)ld, LDAP_OPT_DESC, &fd) != LDAP_OPT_SUCCESS || fd < 0) return 0;
    return shutdown(fd, SHUT_RDWR) == 0;
}

/* A failure of the connection itself: ORC_LDAP_CONNECTION_LOST when the server went away (a connection kept open
   for reuse may have been closed while idle), otherwise ORC_LDAP_UNREACHABLE or `otherwise`. */
static int failure_code(int rc, int otherwise) {
    if (rc == LDAP_SERVER_DOWN) return ORC_LDAP_CONNECTION_LOST;
    return transport_failure(rc) ? ORC_LDAP_UNREACHABLE : otherwise;
}

int orc_ldap_search(void *ld_, const char *base_dn, int base_only, const char *filter, int timeout_seconds, int size_limit,
                    char **dns_out, int *count_out, char *err, size_t err_capacity) {
    LDAP *ld = (LDAP *)ld_;
    LDAPMessage *result = NULL;
    int code = ORC_LDAP_ERROR;
    *dns_out = NULL;
    *count_out = 0;
    err[0] = 0;
    struct timeval timeout = { timeout_seconds, 0 };
    char *no_attributes[] = { LDAP_NO_ATTRS, NULL };
    int rc = ldap_search_ext_s(ld, base_dn, base_only ? LDAP_SCOPE_BASE : LDAP_SCOPE_SUBTREE, filter, no_attributes, 0, NULL,
                               NULL, &timeout, size_limit, &result);
    if (rc == LDAP_SIZELIMIT_EXCEEDED) { code = fail(ORC_LDAP_SIZE_LIMIT, rc, "search", err, err_capacity); goto done; }
    if (rc == LDAP_NO_SUCH_OBJECT) { code = fail(ORC_LDAP_NO_SUCH_OBJECT, rc, "search", err, err_capacity); goto done; }
    if (rc != LDAP_SUCCESS) { code = fail(failure_code(rc, ORC_LDAP_ERROR), rc, "search", err, err_capacity); goto done; }
    size_t length = 0, capacity = 4096;
    char *dns = malloc(capacity);
    if (!dns) { snprintf(err, err_capacity, "out of memory"); goto done; }
    dns[0] = 0;
    int count = 0;
    for (LDAPMessage *entry = ldap_first_entry(ld, result); entry; entry = ldap_next_entry(ld, entry)) {
        char *dn = ldap_get_dn(ld, entry);
        if (!dn) continue;
        size_t n = strlen(dn);
        if (length + n + 2 > capacity) {
            while (length + n + 2 > capacity) capacity *= 2;
            char *grown = realloc(dns, capacity);
            if (!grown) { ldap_memfree(dn); free(dns); snprintf(err, err_capacity, "out of memory"); goto done; }
            dns = grown;
        }
        memcpy(dns + length, dn, n);
        length += n;
        dns[length++] = '\n';
        dns[length] = 0;
        count++;
        ldap_memfree(dn);
    }
    *dns_out = dns;
    *count_out = count;
    code = ORC_LDAP_OK;
done:
    if (result) ldap_msgfree(result);
    return code;
}

int orc_ldap_bind(void *ld, const char *dn, const char *password, char *err, size_t err_capacity) {
    err[0] = 0;
    int rc = simple_bind((LDAP *)ld, dn, password);
    if (rc == LDAP_SUCCESS) return ORC_LDAP_OK;
    if (rc == LDAP_INVALID_CREDENTIALS) { snprintf(err, err_capacity, "invalid credentials"); return ORC_LDAP_WRONG_PASSWORD; }
    return fail(failure_code(rc, ORC_LDAP_ERROR), rc, "bind", err, err_capacity);
}
