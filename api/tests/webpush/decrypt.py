"""Decrypts a Web Push message body (RFC 8291, aes128gcm) with an implementation independent of
the server's (PyPI http_ece), as a browser would: from the subscription's private key and auth
secret. Prints the plaintext.

Usage: decrypt.py <private key scalar, hex> <auth secret, base64url> <body file>
"""

import base64
import sys

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec


def b64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def main():
    scalar, auth, path = sys.argv[1:4]
    key = ec.derive_private_key(int(scalar, 16), ec.SECP256R1())
    with open(path, "rb") as f:
        body = f.read()
    plain = http_ece.decrypt(body, private_key=key, auth_secret=b64(auth), version="aes128gcm")
    sys.stdout.buffer.write(plain)


if __name__ == "__main__":
    main()
