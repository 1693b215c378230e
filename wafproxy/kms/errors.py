"""KmsError: one exception carrying an AWS KMS error code, so the embedded service, the server's
wire answers and the boto3-backed client all speak the same error language."""

from __future__ import annotations

from wafproxy.errors import WafProxyError

NOT_FOUND = "NotFoundException"
DISABLED = "DisabledException"
INVALID_STATE = "KMSInvalidStateException"
INVALID_CIPHERTEXT = "InvalidCiphertextException"
INCORRECT_KEY = "IncorrectKeyException"
ACCESS_DENIED = "AccessDeniedException"
VALIDATION = "ValidationException"
SERIALIZATION = "SerializationException"
ALREADY_EXISTS = "AlreadyExistsException"
INVALID_ALIAS = "InvalidAliasNameException"
INVALID_ARN = "InvalidArnException"
INVALID_MARKER = "InvalidMarkerException"
INVALID_KEY_USAGE = "InvalidKeyUsageException"
UNSUPPORTED = "UnsupportedOperationException"
LIMIT_EXCEEDED = "LimitExceededException"
TAG = "TagException"
MALFORMED_POLICY = "MalformedPolicyDocumentException"
DRY_RUN = "DryRunOperationException"
INTERNAL = "KMSInternalException"
UNKNOWN_OPERATION = "UnknownOperationException"
# authentication (the server's front door)
MISSING_AUTH = "MissingAuthenticationTokenException"
INCOMPLETE_SIGNATURE = "IncompleteSignatureException"
INVALID_SIGNATURE = "InvalidSignatureException"
UNRECOGNIZED_CLIENT = "UnrecognizedClientException"

_STATUS = {INTERNAL: 500, MISSING_AUTH: 403}


class KmsError(WafProxyError):
    """An AWS KMS error: ``code`` is the wire ``__type`` (``NotFoundException``, …)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")

    @property
    def http_status(self) -> int:
        return _STATUS.get(self.code, 400)


class KeystoreError(WafProxyError):
    """The keystore cannot be opened or written: wrong root key, unsafe permissions, a corrupt
    file. Not an API error: the operator has to fix the host."""
