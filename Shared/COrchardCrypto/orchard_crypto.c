#include "orchard_crypto.h"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *orc_error_string(void) {
    BIO *bio = BIO_new(BIO_s_mem());
    unsigned long code;
    int any = 0;
    while (bio && (code = ERR_get_error()) != 0) {
        char buf[256];
        ERR_error_string_n(code, buf, sizeof buf);
        BIO_printf(bio, "%s%s", any ? "; " : "", buf);
        any = 1;
    }
    char *data = NULL;
    long n = bio ? BIO_get_mem_data(bio, &data) : 0;
    const char *fallback = "unknown OpenSSL error";
    char *out = malloc(any ? (size_t)n + 1 : strlen(fallback) + 1);
    if (out) {
        if (any) { memcpy(out, data, (size_t)n); out[n] = 0; } else { strcpy(out, fallback); }
    }
    BIO_free(bio);
    return out;
}

void orc_free(void *p) { OPENSSL_free(p); }

int orc_random_bytes(uint8_t *out, size_t len) { return RAND_bytes(out, (int)len) == 1; }

// Copies a memory BIO's contents into a new buffer.
static int bio_to_buffer(BIO *bio, uint8_t **out, size_t *out_len) {
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n < 0) return 0;
    *out = OPENSSL_malloc(n > 0 ? (size_t)n : 1);
    if (!*out) return 0;
    if (n > 0) memcpy(*out, data, (size_t)n);
    *out_len = (size_t)n;
    return 1;
}

static STACK_OF(X509) *stack_of(X509 **certs, int n) {
    STACK_OF(X509) *sk = sk_X509_new_null();
    if (!sk) return NULL;
    for (int i = 0; i < n; i++) {
        if (!sk_X509_push(sk, certs[i])) { sk_X509_free(sk); return NULL; }
    }
    return sk;
}

/* ---------- keys ---------- */

EVP_PKEY *orc_key_generate_rsa(int bits) { return EVP_RSA_gen((unsigned int)bits); }
EVP_PKEY *orc_key_generate_ec_p256(void) { return EVP_EC_gen("P-256"); }

EVP_PKEY *orc_key_from_pem(const uint8_t *pem, size_t len) {
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) return NULL;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return key;
}

EVP_PKEY *orc_key_from_der(const uint8_t *der, size_t len) {
    const unsigned char *p = der;
    return d2i_AutoPrivateKey(NULL, &p, (long)len);
}

int orc_key_to_pem(EVP_PKEY *key, uint8_t **out, size_t *out_len) {
    BIO *bio = BIO_new(BIO_s_mem());
    int ok = bio && PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1 &&
             bio_to_buffer(bio, out, out_len);
    BIO_free(bio);
    return ok;
}

int orc_key_to_der(EVP_PKEY *key, uint8_t **out, size_t *out_len) {
    unsigned char *buf = NULL;
    int n = i2d_PrivateKey(key, &buf);
    if (n <= 0) return 0;
    *out = buf;
    *out_len = (size_t)n;
    return 1;
}

int orc_key_matches_cert(EVP_PKEY *key, X509 *cert) { return X509_check_private_key(cert, key) == 1; }

void orc_key_free(EVP_PKEY *key) { EVP_PKEY_free(key); }

/* ---------- certificates ---------- */

X509 *orc_x509_from_der(const uint8_t *der, size_t len) {
    const unsigned char *p = der;
    X509 *cert = d2i_X509(NULL, &p, (long)len);
    if (cert && p != der + len) { X509_free(cert); return NULL; }
    return cert;
}

int orc_x509_from_pem(const uint8_t *pem, size_t len, X509 **out, int max) {
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) return 0;
    int n = 0;
    while (n < max) {
        X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (!cert) break;
        out[n++] = cert;
    }
    ERR_clear_error(); // the end of the bundle reads as an error
    BIO_free(bio);
    return n;
}

int orc_x509_to_der(X509 *cert, uint8_t **out, size_t *out_len) {
    unsigned char *buf = NULL;
    int n = i2d_X509(cert, &buf);
    if (n <= 0) return 0;
    *out = buf;
    *out_len = (size_t)n;
    return 1;
}

int orc_x509_to_pem(X509 *cert, uint8_t **out, size_t *out_len) {
    BIO *bio = BIO_new(BIO_s_mem());
    int ok = bio && PEM_write_bio_X509(bio, cert) == 1 && bio_to_buffer(bio, out, out_len);
    BIO_free(bio);
    return ok;
}

void orc_x509_free(X509 *cert) { X509_free(cert); }

X509 *orc_x509_up_ref(X509 *cert) { return X509_up_ref(cert) == 1 ? cert : NULL; }

static char *name_string(const X509_NAME *name) {
    BIO *bio = BIO_new(BIO_s_mem());
    uint8_t *buf = NULL;
    size_t n = 0;
    char *out = NULL;
    if (bio && X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0 && bio_to_buffer(bio, &buf, &n)) {
        out = OPENSSL_malloc(n + 1);
        if (out) { memcpy(out, buf, n); out[n] = 0; }
        OPENSSL_free(buf);
    }
    BIO_free(bio);
    return out;
}

static int asn1_time_to_epoch(const ASN1_TIME *t, int64_t *out) {
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    *out = (int64_t)timegm(&tm);
    return 1;
}

int orc_x509_info(X509 *cert, char **subject, char **issuer, char **serial_hex,
                  int64_t *not_before, int64_t *not_after, int *is_ca) {
    *subject = name_string(X509_get_subject_name(cert));
    *issuer = name_string(X509_get_issuer_name(cert));
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    *serial_hex = bn ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    int ok = *subject && *issuer && *serial_hex &&
             asn1_time_to_epoch(X509_get0_notBefore(cert), not_before) &&
             asn1_time_to_epoch(X509_get0_notAfter(cert), not_after);
    *is_ca = X509_check_ca(cert) > 0;
    if (!ok) {
        OPENSSL_free(*subject); OPENSSL_free(*issuer); OPENSSL_free(*serial_hex);
        *subject = *issuer = *serial_hex = NULL;
    }
    return ok;
}

char *orc_x509_subject_entry(X509 *cert, const char *short_name) {
    int nid = OBJ_sn2nid(short_name);
    if (nid == NID_undef) return NULL;
    X509_NAME *name = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(name, nid, -1);
    if (idx < 0) return NULL;
    ASN1_STRING *value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, value);
    if (n < 0) return NULL;
    char *out = OPENSSL_malloc((size_t)n + 1);
    if (out) { memcpy(out, utf8, (size_t)n); out[n] = 0; }
    OPENSSL_free(utf8);
    return out;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext) return 0;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

X509 *orc_x509_create(EVP_PKEY *subject_key, const char *subject, X509 *issuer, EVP_PKEY *issuer_key,
                      const uint8_t *serial, size_t serial_len, int64_t not_before, int64_t not_after,
                      int usage, const char *dns_name) {
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();
    BIGNUM *bn = BN_bin2bn(serial, (int)serial_len, NULL);
    int ok = cert && name && bn;
    ok = ok && X509_set_version(cert, 2);
    ok = ok && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    // Parse "/CN=a/O=b" into the name.
    if (ok) {
        char *copy = OPENSSL_strdup(subject);
        char *save = NULL;
        ok = copy != NULL;
        for (char *part = ok ? strtok_r(copy, "/", &save) : NULL; ok && part; part = strtok_r(NULL, "/", &save)) {
            char *eq = strchr(part, '=');
            if (!eq) { ok = 0; break; }
            *eq = 0;
            ok = X509_NAME_add_entry_by_txt(name, part, MBSTRING_UTF8, (unsigned char *)(eq + 1), -1, -1, 0);
        }
        OPENSSL_free(copy);
    }
    ok = ok && X509_set_subject_name(cert, name);
    ok = ok && X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
    ok = ok && ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)not_before) != NULL;
    ok = ok && ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)not_after) != NULL;
    ok = ok && X509_set_pubkey(cert, subject_key);
    ok = ok && add_ext(cert, issuer, NID_subject_key_identifier, "hash");
    if (ok && issuer) ok = add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always");
    if (ok && usage == 1) {
        ok = add_ext(cert, issuer, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    } else if (ok) {
        ok = add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(cert, issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
             add_ext(cert, issuer, NID_ext_key_usage, usage == 2 ? "serverAuth" : "clientAuth,emailProtection");
    }
    if (ok && dns_name && *dns_name) {
        char san[512];
        snprintf(san, sizeof san, "DNS:%s", dns_name);
        ok = add_ext(cert, issuer, NID_subject_alt_name, san);
    }
    ok = ok && X509_sign(cert, issuer_key ? issuer_key : subject_key, EVP_sha256()) > 0;
    BN_free(bn);
    X509_NAME_free(name);
    if (!ok) { X509_free(cert); return NULL; }
    return cert;
}

static X509_STORE *store_of(X509 **roots, int n, int64_t at_time) {
    X509_STORE *store = X509_STORE_new();
    if (!store) return NULL;
    for (int i = 0; i < n; i++) {
        if (X509_STORE_add_cert(store, roots[i]) != 1) { X509_STORE_free(store); return NULL; }
    }
    // Device identities carry clientAuth, not S/MIME usage: check the chain, not the purpose.
    X509_STORE_set_purpose(store, X509_PURPOSE_ANY);
    if (at_time > 0) {
        X509_VERIFY_PARAM *param = X509_STORE_get0_param(store);
        X509_VERIFY_PARAM_set_time(param, (time_t)at_time);
    } else if (at_time < 0) {
        X509_STORE_set_flags(store, X509_V_FLAG_NO_CHECK_TIME);
    }
    return store;
}

int orc_x509_verify(X509 *leaf, X509 **intermediates, int n_intermediates, X509 **roots, int n_roots,
                    int64_t at_time) {
    X509_STORE *store = store_of(roots, n_roots, at_time);
    STACK_OF(X509) *chain = stack_of(intermediates, n_intermediates);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = store && chain && ctx && X509_STORE_CTX_init(ctx, store, leaf, chain) == 1;
    if (ok) {
        ok = X509_verify_cert(ctx) == 1;
        if (!ok) {
            int err = X509_STORE_CTX_get_error(ctx);
            ERR_raise_data(ERR_LIB_X509, X509_R_CERTIFICATE_VERIFICATION_FAILED, "%s",
                           X509_verify_cert_error_string(err));
        }
    }
    X509_STORE_CTX_free(ctx);
    sk_X509_free(chain);
    X509_STORE_free(store);
    return ok;
}

/* ---------- CMS ---------- */

int orc_cms_sign(X509 *signer, EVP_PKEY *key, X509 **chain, int n_chain, const uint8_t *data, size_t len,
                 int detached, uint8_t **out, size_t *out_len) {
    STACK_OF(X509) *certs = stack_of(chain, n_chain);
    BIO *in = BIO_new_mem_buf(data, (int)len);
    BIO *der = BIO_new(BIO_s_mem());
    CMS_ContentInfo *cms = NULL;
    unsigned int flags = CMS_BINARY | CMS_PARTIAL | (detached ? CMS_DETACHED : 0);
    int ok = certs && in && der;
    ok = ok && (cms = CMS_sign(NULL, NULL, certs, NULL, flags)) != NULL;
    ok = ok && CMS_add1_signer(cms, signer, key, EVP_sha256(), CMS_BINARY) != NULL;
    ok = ok && CMS_final(cms, in, NULL, flags) == 1;
    ok = ok && i2d_CMS_bio(der, cms) == 1 && bio_to_buffer(der, out, out_len);
    CMS_ContentInfo_free(cms);
    BIO_free(der);
    BIO_free(in);
    sk_X509_free(certs);
    return ok;
}

/* Detached content for CMS_verify behind a null filter. Given a memory BIO, OpenSSL 3.0's CMS_verify
   copies it into a new memory BIO that it does not free when verification fails later (~270 bytes a
   call, reachable with a forged Mdm-Signature before any trust decision; found by Deploy/fuzz.sh cms). */
static BIO *detached_content_bio(const uint8_t *data, size_t len) {
    BIO *mem = BIO_new_mem_buf(data, (int)len);
    BIO *filter = mem ? BIO_new(BIO_f_null()) : NULL;
    if (!filter) { BIO_free(mem); return NULL; }
    return BIO_push(filter, mem);
}

/* Whether a SignedData carries its content (attached), not only a signature over content sent apart. */
static int has_embedded_content(CMS_ContentInfo *cms) {
    ASN1_OCTET_STRING **content = CMS_get0_content(cms);
    return content != NULL && *content != NULL;
}

int orc_cms_verify(const uint8_t *cms_der, size_t cms_len, const uint8_t *detached, size_t detached_len,
                   X509 **roots, int n_roots, int64_t at_time,
                   uint8_t **content, size_t *content_len, X509 **signer_out) {
    *signer_out = NULL;
    BIO *in = BIO_new_mem_buf(cms_der, (int)cms_len);
    CMS_ContentInfo *cms = in ? d2i_CMS_bio(in, NULL) : NULL;
    BIO_free(in);
    if (!cms) return 0;
    BIO *dcont = detached ? detached_content_bio(detached, detached_len) : NULL;
    BIO *outb = BIO_new(BIO_s_mem());
    X509_STORE *store = store_of(roots, n_roots, at_time);
    unsigned int flags = CMS_BINARY | (n_roots == 0 ? CMS_NO_SIGNER_CERT_VERIFY : 0);
    int ok = outb && store && (!detached || dcont);
    if (ok && detached != NULL && has_embedded_content(cms)) {
        ERR_raise_data(ERR_LIB_CMS, CMS_R_CONTENT_VERIFY_ERROR, "signature carries content and detached content was given");
        ok = 0;
    }
    if (ok && detached == NULL && CMS_get0_content(cms) == NULL) {
        ERR_raise_data(ERR_LIB_CMS, CMS_R_NO_CONTENT, "detached signature without content");
        ok = 0;
    }
    ok = ok && CMS_verify(cms, NULL, store, dcont, outb, flags) == 1;
    if (ok) {
        STACK_OF(X509) *signers = CMS_get0_signers(cms);
        ok = signers && sk_X509_num(signers) == 1;
        if (ok) *signer_out = orc_x509_up_ref(sk_X509_value(signers, 0));
        sk_X509_free(signers);
        ok = ok && *signer_out && bio_to_buffer(outb, content, content_len);
    }
    if (!ok && *signer_out) { X509_free(*signer_out); *signer_out = NULL; }
    X509_STORE_free(store);
    BIO_free(outb);
    BIO_free_all(dcont);
    CMS_ContentInfo_free(cms);
    return ok;
}

int orc_cms_verify_with_signers(const uint8_t *cms_der, size_t cms_len, const uint8_t *detached, size_t detached_len,
                                X509 **candidates, int n_candidates, X509 **signer_out) {
    *signer_out = NULL;
    const unsigned char *p = cms_der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)cms_len);
    if (!cms) return 0;
    if (p != cms_der + cms_len) { CMS_ContentInfo_free(cms); return 0; }
    BIO *dcont = detached ? detached_content_bio(detached, detached_len) : NULL;
    STACK_OF(X509) *certs = stack_of(candidates, n_candidates);
    X509_STORE *store = X509_STORE_new();
    int ok = certs && store && (!detached || dcont);
    if (ok && detached == NULL && CMS_get0_content(cms) == NULL) ok = 0;
    /* A detached signature carries no content of its own. */
    if (ok && detached != NULL && has_embedded_content(cms)) ok = 0;
    /* Only the signature: the caller decides whether it trusts the signer's certificate. */
    ok = ok && CMS_verify(cms, certs, store, dcont, NULL, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) == 1;
    if (ok) {
        STACK_OF(X509) *signers = CMS_get0_signers(cms);
        ok = signers && sk_X509_num(signers) == 1;
        if (ok) *signer_out = orc_x509_up_ref(sk_X509_value(signers, 0));
        sk_X509_free(signers);
        ok = ok && *signer_out;
    }
    X509_STORE_free(store);
    sk_X509_free(certs);
    BIO_free_all(dcont);
    CMS_ContentInfo_free(cms);
    return ok;
}

int orc_cms_encrypt(X509 *recipient, const uint8_t *data, size_t len, uint8_t **out, size_t *out_len) {
    STACK_OF(X509) *recips = stack_of(&recipient, 1);
    BIO *in = BIO_new_mem_buf(data, (int)len);
    BIO *der = BIO_new(BIO_s_mem());
    CMS_ContentInfo *cms = NULL;
    int ok = recips && in && der;
    ok = ok && (cms = CMS_encrypt(recips, in, EVP_aes_256_cbc(), CMS_BINARY)) != NULL;
    ok = ok && i2d_CMS_bio(der, cms) == 1 && bio_to_buffer(der, out, out_len);
    CMS_ContentInfo_free(cms);
    BIO_free(der);
    BIO_free(in);
    sk_X509_free(recips);
    return ok;
}

int orc_cms_decrypt(const uint8_t *cms_der, size_t cms_len, X509 *cert, EVP_PKEY *key,
                    uint8_t **out, size_t *out_len) {
    BIO *in = BIO_new_mem_buf(cms_der, (int)cms_len);
    CMS_ContentInfo *cms = in ? d2i_CMS_bio(in, NULL) : NULL;
    BIO_free(in);
    if (!cms) return -1;  /* not CMS at all: told apart from "not for this key" (0) */
    BIO *outb = BIO_new(BIO_s_mem());
    int ok = outb && CMS_decrypt(cms, key, cert, NULL, outb, CMS_BINARY) == 1 &&
             bio_to_buffer(outb, out, out_len);
    BIO_free(outb);
    CMS_ContentInfo_free(cms);
    return ok;
}

/* ---------- PKCS#12 ---------- */

int orc_pkcs12_create(X509 *cert, EVP_PKEY *key, X509 **chain, int n_chain, const char *password,
                      const char *friendly_name, uint8_t **out, size_t *out_len) {
    STACK_OF(X509) *ca = stack_of(chain, n_chain);
    // Legacy-compatible algorithms: Apple devices import 3DES/SHA-1 PKCS#12 reliably. 128 key-derivation
    // and MAC iterations, not OpenSSL's 2048: the password travels in the same profile, so stretching
    // it protects nothing, and 2048 cost 1.4 ms per profile built and 2 ms per profile installed.
    PKCS12 *p12 = ca ? PKCS12_create(password, friendly_name, key, cert, ca,
                                     NID_pbe_WithSHA1And3_Key_TripleDES_CBC,
                                     NID_pbe_WithSHA1And3_Key_TripleDES_CBC, 128, 128, 0)
                     : NULL;
    unsigned char *buf = NULL;
    int n = p12 ? i2d_PKCS12(p12, &buf) : 0;
    PKCS12_free(p12);
    sk_X509_free(ca);
    if (n <= 0) return 0;
    *out = buf;
    *out_len = (size_t)n;
    return 1;
}

int orc_pkcs12_parse(const uint8_t *data, size_t len, const char *password, X509 **cert, EVP_PKEY **key,
                     X509 **chain, int max_chain, int *n_chain) {
    const unsigned char *p = data;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
    STACK_OF(X509) *ca = NULL;
    *cert = NULL;
    *key = NULL;
    *n_chain = 0;
    int ok = p12 && PKCS12_parse(p12, password, key, cert, &ca) == 1 && *cert && *key;
    if (ok && ca) {
        while (sk_X509_num(ca) > 0 && *n_chain < max_chain) chain[(*n_chain)++] = sk_X509_shift(ca);
    }
    sk_X509_pop_free(ca, X509_free);
    PKCS12_free(p12);
    if (!ok) {
        X509_free(*cert); EVP_PKEY_free(*key);
        *cert = NULL; *key = NULL;
        for (int i = 0; i < *n_chain; i++) X509_free(chain[i]);
        *n_chain = 0;
    }
    return ok;
}

/* ---------- AEAD and digests ---------- */

int orc_aead_seal(const uint8_t key[32], const uint8_t *aad, size_t aad_len, const uint8_t *plain,
                  size_t len, uint8_t **out, size_t *out_len) {
    size_t total = 12 + len + 16;
    uint8_t *buf = OPENSSL_malloc(total);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    int ok = buf && ctx && RAND_bytes(buf, 12) == 1;
    ok = ok && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, buf) == 1;
    ok = ok && (aad_len == 0 || EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1);
    ok = ok && EVP_EncryptUpdate(ctx, buf + 12, &n, plain, (int)len) == 1;
    ok = ok && EVP_EncryptFinal_ex(ctx, buf + 12 + n, &fin) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, buf + 12 + len) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) { OPENSSL_free(buf); return 0; }
    *out = buf;
    *out_len = total;
    return 1;
}

int orc_aead_open(const uint8_t key[32], const uint8_t *aad, size_t aad_len, const uint8_t *sealed,
                  size_t len, uint8_t **out, size_t *out_len) {
    if (len < 28) return 0;
    size_t plain_len = len - 28;
    uint8_t *buf = OPENSSL_malloc(plain_len > 0 ? plain_len : 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    int ok = buf && ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, sealed) == 1;
    ok = ok && (aad_len == 0 || EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1);
    ok = ok && EVP_DecryptUpdate(ctx, buf, &n, sealed + 12, (int)plain_len) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)(sealed + len - 16)) == 1;
    ok = ok && EVP_DecryptFinal_ex(ctx, buf + n, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) { OPENSSL_free(buf); return 0; }
    *out = buf;
    *out_len = plain_len;
    return 1;
}

int orc_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data, size_t len, uint8_t out[32]) {
    unsigned int n = 32;
    return HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) != NULL;
}

/* PBKDF2-HMAC-SHA256, for local passwords (the ADE sign-in page's accounts). */
int orc_pbkdf2_sha256(const char *password, size_t password_len, const uint8_t *salt, size_t salt_len, int iterations,
                      uint8_t *out, size_t out_len) {
    return PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, (int)salt_len, iterations, EVP_sha256(), (int)out_len, out) == 1;
}

/* One-shot digests and HMACs by OpenSSL's name ("SHA256", "SHA1"); the output's length in *out_len. SHA-256, the one
 * on every request (fingerprints, token hashes), is fetched from the provider once: a fetch per call doubled its cost. */
static EVP_MD *sha256_md(void) {
    static EVP_MD *fetched = NULL;
    EVP_MD *md = __atomic_load_n(&fetched, __ATOMIC_ACQUIRE);
    if (md) return md;
    md = EVP_MD_fetch(NULL, "SHA256", NULL);
    EVP_MD *expected = NULL;
    if (md && !__atomic_compare_exchange_n(&fetched, &expected, md, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        EVP_MD_free(md);  /* another thread fetched it first */
        md = expected;
    }
    return md;
}

int orc_digest(const char *name, const uint8_t *data, size_t len, uint8_t *out, unsigned int *out_len) {
    const EVP_MD *md = strcmp(name, "SHA256") == 0 ? sha256_md() : EVP_get_digestbyname(name);
    return md && EVP_Digest(data, len, out, out_len, md, NULL) == 1;
}

int orc_hmac(const char *name, const uint8_t *key, size_t key_len, const uint8_t *data, size_t len, uint8_t *out,
             unsigned int *out_len) {
    const EVP_MD *md = EVP_get_digestbyname(name);
    return md && HMAC(md, key, (int)key_len, data, len, out, out_len) != NULL;
}

/* SHA-256 signatures (JWTs, RS256 and ES256): RSA PKCS#1 v1.5, or ECDSA as DER. */
int orc_sign_sha256(EVP_PKEY *key, const uint8_t *data, size_t len, uint8_t **out, size_t *out_len) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t n = 0;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestSign(ctx, NULL, &n, data, len) == 1 && (*out = malloc(n)) != NULL &&
             EVP_DigestSign(ctx, *out, &n, data, len) == 1;
    if (ok) *out_len = n;
    else if (*out) { free(*out); *out = NULL; }
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* 1: valid; 0: not (or not a signature at all). */
int orc_verify_sha256(EVP_PKEY *key, const uint8_t *data, size_t len, const uint8_t *sig, size_t sig_len) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, data, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* A public key from its DER SubjectPublicKeyInfo. */
EVP_PKEY *orc_public_key_from_der(const uint8_t *der, size_t len) {
    const unsigned char *p = der;
    return d2i_PUBKEY(NULL, &p, (long)len);
}

/* ECDSA signatures between DER (OpenSSL) and r||s of `half` bytes each (JWS, RFC 7518 §3.4). */
int orc_ecdsa_der_to_raw(const uint8_t *der, size_t len, uint8_t *out, int half) {
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    const BIGNUM *r = NULL, *s = NULL;
    int ok = sig != NULL;
    if (ok) {
        ECDSA_SIG_get0(sig, &r, &s);
        ok = BN_bn2binpad(r, out, half) == half && BN_bn2binpad(s, out + half, half) == half;
    }
    ECDSA_SIG_free(sig);
    return ok;
}

int orc_ecdsa_raw_to_der(const uint8_t *raw, int half, uint8_t **out, size_t *out_len) {
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, half, NULL), *s = BN_bin2bn(raw + half, half, NULL);
    unsigned char *buf = NULL;
    int n = -1;
    if (sig && r && s && ECDSA_SIG_set0(sig, r, s) == 1) {
        r = s = NULL; /* owned by sig now */
        n = i2d_ECDSA_SIG(sig, &buf);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    if (n <= 0) return 0;
    *out = malloc((size_t)n);
    if (!*out) { OPENSSL_free(buf); return 0; }
    memcpy(*out, buf, (size_t)n);
    *out_len = (size_t)n;
    OPENSSL_free(buf);
    return 1;
}

/* The key's OpenSSL type (EVP_PKEY_RSA, EVP_PKEY_EC) and size in bits. */
int orc_key_kind(EVP_PKEY *key, int *bits) {
    *bits = EVP_PKEY_get_bits(key);
    return EVP_PKEY_get_base_id(key);
}

/* The key's public half as DER SubjectPublicKeyInfo. */
int orc_public_key_to_der(EVP_PKEY *key, uint8_t **out, size_t *out_len) {
    unsigned char *buf = NULL;
    int n = i2d_PUBKEY(key, &buf);
    if (n <= 0) return 0;
    *out = malloc((size_t)n);
    if (!*out) { OPENSSL_free(buf); return 0; }
    memcpy(*out, buf, (size_t)n);
    *out_len = (size_t)n;
    OPENSSL_free(buf);
    return 1;
}
