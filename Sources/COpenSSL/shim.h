#pragma once
// The system libcrypto (OpenSSL 3.0 or newer: Debian's libssl-dev), for the digests, HMAC and
// signature checks in WebhookCrypto. Only EVP interfaces are used, none deprecated in 3.0.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/err.h>
