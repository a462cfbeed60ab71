"""Independent SAS token check: recomputes the signature with Python's hmac module.

usage: verify_sas.py TOKEN BASE64_KEY EXPECTED_RESOURCE
Prints "valid" and exits 0 when the token is IoT Hub-format, names EXPECTED_RESOURCE and
carries HMAC-SHA256(key, "{sr}\\n{se}"); otherwise explains and exits 1.
"""

import base64
import hashlib
import hmac
import sys
import urllib.parse


def main() -> int:
    token, key_b64, expected_resource = sys.argv[1:4]
    prefix = "SharedAccessSignature "
    if not token.startswith(prefix):
        print("missing prefix")
        return 1
    fields = dict(part.split("=", 1) for part in token[len(prefix):].split("&"))
    if set(fields) != {"sr", "sig", "se"}:
        print(f"unexpected fields {sorted(fields)}")
        return 1
    resource = urllib.parse.unquote(fields["sr"])
    if resource != expected_resource:
        print(f"resource {resource!r} != {expected_resource!r}")
        return 1
    message = (fields["sr"] + "\n" + fields["se"]).encode()
    digest = hmac.new(base64.b64decode(key_b64), message, hashlib.sha256).digest()
    expected_sig = urllib.parse.quote(base64.b64encode(digest).decode(), safe="")
    if not hmac.compare_digest(expected_sig, fields["sig"]):
        print(f"signature {fields['sig']} != {expected_sig}")
        return 1
    print("valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
