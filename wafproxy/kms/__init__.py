"""Key management modelled on AWS KMS: a keystore encrypted under a root key, the KMS operations
with AWS semantics (embedded, or served over AWS KMS's JSON wire protocol), backends the proxy
uses (``local`` in-process or ``aws`` through boto3), and TLS private keys kept only as
envelope-encrypted files. docs/kms.md describes the key hierarchy and the root of trust.

Modules import lazily where they pull in boto3 or aiohttp, so ``wafproxy.kms.config`` stays
cheap for the config loader.
"""
