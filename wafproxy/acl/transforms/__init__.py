"""TRANSFORMS registry: AWS WAF's text transformations (``transforms: [url_decode, lowercase]``).

Every transformation is a pure ``str -> str`` function that never raises. Request bytes reach the
engine decoded as UTF-8 with ``surrogateescape``, so an undecodable byte 0xNN is the character
U+DCNN. Transformations that work on bytes (the decoders and the hashes) encode the same way and
decode their result the same way: a decoded ``%C3%A9`` is ``é``, a decoded ``%E9`` is ``\\udce9``.

Semantics follow the AWS WAF Developer Guide; where it is silent they follow ModSecurity, from
which AWS took most of these (``t:cmdLine``, ``t:cssDecode``, ...). Where both are silent (the
later types that the API reference lists only by name: ``cmd_line_win``, ``cmd_line_unix``,
``js_decode_ext``) the docstring says what wafproxy does. ``md5`` and ``sha256`` give the raw
digest bytes, as AWS does, not hex.

Nothing here uses the stdlib ``re`` module (these run on attacker-controlled data), and every
loop steps from marker to marker (``%``, ``\\``, ``&``, ...) with ``split``/``find``/``translate``
doing the scanning in C, so the cost is linear in the input.

One module per family of transformations; importing this package registers them all. They
register in import order, which is the order docs/reference.md lists them in, so the imports
below are kept in that order rather than sorted.
"""

# isort: off
from wafproxy.acl.transforms.registry import TRANSFORMS, chain
from wafproxy.acl.transforms import simple
from wafproxy.acl.transforms import cmdline
from wafproxy.acl.transforms import url
from wafproxy.acl.transforms import binary
from wafproxy.acl.transforms import comments
from wafproxy.acl.transforms import escapes
from wafproxy.acl.transforms import entities
from wafproxy.acl.transforms import paths
# isort: on

__all__ = [
    "TRANSFORMS",
    "binary",
    "chain",
    "cmdline",
    "comments",
    "entities",
    "escapes",
    "paths",
    "simple",
    "url",
]
