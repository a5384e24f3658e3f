"""Who is calling the head (authentication) and what they may do (authorization).

See docs/security.md. ``peer``: the kernel's word on a local caller (SO_PEERCRED on the Unix
socket, the socket table for loopback TCP); ``sigv4``: AWS Signature Version 4 with keys the
head issued; ``identify``: one request.s Principal (identify_signed, identify_unsigned); ``policy``: the rules.
"""
