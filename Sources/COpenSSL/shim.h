#pragma once
// The system libcrypto (OpenSSL 3.0 or newer: Debian's libssl-dev), for the digests, HMAC and
// signature checks in WebhookCrypto. Signatures go through EVP. Digests use the SHA1_/SHA256_/
// SHA512_ functions on plain structs, deprecated in OpenSSL 3 but still there: a state is a
// value that copies without an allocation, where EVP's contexts cost several on every request
// (measured: 5% of the CPU per request with EVP).
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/err.h>
