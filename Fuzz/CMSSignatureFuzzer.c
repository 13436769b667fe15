/* libFuzzer entry point for what the gateway does with an `Mdm-Signature` before any trust decision:
 * split the certificates out of the DER SignedData with Orchard's own DER walk
 * (orc_cms_split_certificates), parse them and the stripped SignedData with OpenSSL, and verify the
 * signature over a body with the parsed certificates as candidates (orc_cms_verify_with_signers); and what
 * it does with a watch's MachineInfo (an attached signature: orc_cms_verify, here without roots).
 * Built by Deploy/fuzz.sh cms with clang -fsanitize=fuzzer,address against Shared/COrchardCrypto. */
#include <openssl/cms.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include "orchard_crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t body[] = "<?xml version=\"1.0\"?><plist><dict/></plist>";
    uint8_t *stripped = NULL;
    size_t stripped_len = 0, offsets[8], lengths[8];
    int n = 0;
    if (orc_cms_split_certificates(data, size, &stripped, &stripped_len, offsets, lengths, 8, &n)) {
        X509 *certs[8];
        int parsed = 0;
        for (int i = 0; i < n; i++) {
            if (offsets[i] > size || lengths[i] > size - offsets[i]) __builtin_trap(); /* a certificate outside the input */
            const unsigned char *p = data + offsets[i];
            X509 *x = d2i_X509(NULL, &p, (long)lengths[i]);
            if (x) certs[parsed++] = x;
        }
        X509 *signer = NULL;
        orc_cms_verify_with_signers(stripped, stripped_len, body, sizeof body - 1, certs, parsed, &signer);
        X509_free(signer);
        for (int i = 0; i < parsed; i++) X509_free(certs[i]);
        OPENSSL_free(stripped);
    }
    uint8_t *content = NULL;
    size_t content_len = 0;
    X509 *signer = NULL;
    if (orc_cms_verify(data, size, NULL, 0, NULL, 0, 0, &content, &content_len, &signer)) OPENSSL_free(content);
    X509_free(signer);
    return 0;
}
