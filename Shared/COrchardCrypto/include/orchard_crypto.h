// Thin C layer over OpenSSL 3 for Orchard. It exists because much of OpenSSL's API is macros
// (STACK_OF, BIO_get_mem_data, EVP_RSA_gen) that Swift cannot call. Every function returns 1 on
// success and 0 on failure; on failure orc_error_string() describes OpenSSL's error queue.
// Buffers returned through uint8_t ** are allocated with OPENSSL_malloc: free with orc_free.
#ifndef ORCHARD_CRYPTO_H
#define ORCHARD_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

typedef struct x509_st X509;
typedef struct evp_pkey_st EVP_PKEY;

/// Pops OpenSSL's error queue into a malloc'd string (free with orc_free); never NULL.
char *orc_error_string(void);
void orc_free(void *p);

int orc_random_bytes(uint8_t *out, size_t len);

// Keys
EVP_PKEY *orc_key_generate_rsa(int bits);
EVP_PKEY *orc_key_generate_ec_p256(void);
EVP_PKEY *orc_key_from_pem(const uint8_t *pem, size_t len);
EVP_PKEY *orc_key_from_der(const uint8_t *der, size_t len);
int orc_key_to_pem(EVP_PKEY *key, uint8_t **out, size_t *out_len);
int orc_key_to_der(EVP_PKEY *key, uint8_t **out, size_t *out_len);
int orc_key_matches_cert(EVP_PKEY *key, X509 *cert);
void orc_key_free(EVP_PKEY *key);

// Certificates
X509 *orc_x509_from_der(const uint8_t *der, size_t len);
/// Reads up to max certificates from a PEM bundle; returns how many were read (0 on error).
int orc_x509_from_pem(const uint8_t *pem, size_t len, X509 **out, int max);
int orc_x509_to_der(X509 *cert, uint8_t **out, size_t *out_len);
int orc_x509_to_pem(X509 *cert, uint8_t **out, size_t *out_len);
void orc_x509_free(X509 *cert);
X509 *orc_x509_up_ref(X509 *cert);
/// Subject and issuer in RFC 2253 form, serial as upper-case hex; strings freed with orc_free.
int orc_x509_info(X509 *cert, char **subject, char **issuer, char **serial_hex,
                  int64_t *not_before, int64_t *not_after, int *is_ca);
/// The value of the first entry of the subject with the given short name (e.g. "CN"), or NULL.
char *orc_x509_subject_entry(X509 *cert, const char *short_name);
/// Creates a certificate for subject_key signed by issuer_key (self-signed when issuer is NULL).
/// subject is in OpenSSL's "/CN=a/O=b" form. usage: 0 leaf for TLS client/signing, 1 CA, 2 TLS server.
X509 *orc_x509_create(EVP_PKEY *subject_key, const char *subject, X509 *issuer, EVP_PKEY *issuer_key,
                      const uint8_t *serial, size_t serial_len, int64_t not_before, int64_t not_after,
                      int usage, const char *dns_name);
/// Verifies leaf against roots with untrusted intermediates at the given time (0 = now).
int orc_x509_verify(X509 *leaf, X509 **intermediates, int n_intermediates, X509 **roots, int n_roots,
                    int64_t at_time);

// CMS
/// SignedData over data with SHA-256; the signer certificate and the chain are included.
int orc_cms_sign(X509 *signer, EVP_PKEY *key, X509 **chain, int n_chain, const uint8_t *data, size_t len,
                 int detached, uint8_t **out, size_t *out_len);
/// Verifies a DER SignedData (detached when detached != NULL). With n_roots == 0 the signature is
/// checked but not the chain. at_time: 0 now, > 0 that time, < 0 ignore validity periods.
/// Returns the content and a new reference to the signer certificate.
int orc_cms_verify(const uint8_t *cms, size_t cms_len, const uint8_t *detached, size_t detached_len,
                   X509 **roots, int n_roots, int64_t at_time,
                   uint8_t **content, size_t *content_len, X509 **signer_out);
int orc_cms_encrypt(X509 *recipient, const uint8_t *data, size_t len, uint8_t **out, size_t *out_len);
int orc_cms_decrypt(const uint8_t *cms, size_t cms_len, X509 *cert, EVP_PKEY *key,
                    uint8_t **out, size_t *out_len);

/* Verifies the signature of a SignedData whose signer is among candidates (no chain check). */
int orc_cms_verify_with_signers(const uint8_t *cms, size_t cms_len, const uint8_t *detached, size_t detached_len,
                                X509 **candidates, int n_candidates, X509 **signer_out);
// PKCS#12
int orc_pkcs12_create(X509 *cert, EVP_PKEY *key, X509 **chain, int n_chain, const char *password,
                      const char *friendly_name, uint8_t **out, size_t *out_len);
/// Parses a PKCS#12; chain receives up to max_chain extra certificates, *n_chain how many.
int orc_pkcs12_parse(const uint8_t *p12, size_t len, const char *password, X509 **cert, EVP_PKEY **key,
                     X509 **chain, int max_chain, int *n_chain);

// AES-256-GCM for secrets at rest: out = nonce(12) || ciphertext || tag(16).
int orc_aead_seal(const uint8_t key[32], const uint8_t *aad, size_t aad_len, const uint8_t *plain,
                  size_t len, uint8_t **out, size_t *out_len);
int orc_aead_open(const uint8_t key[32], const uint8_t *aad, size_t aad_len, const uint8_t *sealed,
                  size_t len, uint8_t **out, size_t *out_len);

int orc_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data, size_t len, uint8_t out[32]);
int orc_pbkdf2_sha256(const char *password, size_t password_len, const uint8_t *salt, size_t salt_len, int iterations,
                      uint8_t *out, size_t out_len);

/* Digests and HMACs by name ("SHA256", "SHA1"); SHA-256 signatures (RSA PKCS#1 v1.5, ECDSA as DER) and their check;
 * public keys from SubjectPublicKeyInfo DER; ECDSA signatures between DER and JWS's r||s. */
int orc_digest(const char *name, const uint8_t *data, size_t len, uint8_t *out, unsigned int *out_len);
int orc_hmac(const char *name, const uint8_t *key, size_t key_len, const uint8_t *data, size_t len, uint8_t *out,
             unsigned int *out_len);
int orc_sign_sha256(EVP_PKEY *key, const uint8_t *data, size_t len, uint8_t **out, size_t *out_len);
int orc_verify_sha256(EVP_PKEY *key, const uint8_t *data, size_t len, const uint8_t *sig, size_t sig_len);
EVP_PKEY *orc_public_key_from_der(const uint8_t *der, size_t len);
int orc_ecdsa_der_to_raw(const uint8_t *der, size_t len, uint8_t *out, int half);
int orc_ecdsa_raw_to_der(const uint8_t *raw, int half, uint8_t **out, size_t *out_len);
int orc_key_kind(EVP_PKEY *key, int *bits);
int orc_public_key_to_der(EVP_PKEY *key, uint8_t **out, size_t *out_len);

#endif
