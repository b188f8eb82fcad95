#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# X-Bkapi-Jwt interoperability with the Python side: tokens are made by PyJWT (the library the
# gateway SDKs and the Python apigw_required use) with a key made by the openssl command, sent to
# bkoauth-mhd-app over loopback HTTP, and for every token the example service's decision must be
# PyJWT's decision (RS256 pinned, iss APIGW, exp required, 60 s leeway), and a refusal's body
# must be byte for byte what Django's JsonResponse writes for {"result": False, "data": None,
# "message": ...}.
#
# usage: test_jwt_pyjwt.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
app="$build/examples/bkoauth-mhd-app"
py=/usr/bin/python3
[ -x "$app" ] || { echo "not built: $app (BKOAUTH_BUILD_EXAMPLES=OFF?)" >&2; exit 1; }
"$py" -c 'import jwt, cryptography' || { echo "PyJWT missing: run scripts/install-deps.sh" >&2; exit 1; }

work=$(mktemp -d /tmp/bkoauth-jwt-pyjwt.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/gw.key" 2>/dev/null
openssl pkey -in "$work/gw.key" -pubout -out "$work/gw.pub"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/other.key" 2>/dev/null

# The service, with the public key given on one line with literal \n (as in an env file).
APIGW_PUBLIC_KEY="$(awk '{printf "%s\\n", $0}' "$work/gw.pub")" \
OAUTH_API_URL=http://127.0.0.1:9 BKOAUTH_DATABASE_URL="sqlite:$work/tokens.db" BKOAUTH_LOG_LEVEL=error \
  "$app" --port 0 --port-file "$work/port" 2>"$work/app.log" &
pid=$!
for _ in $(seq 1 500); do [ -s "$work/port" ] && break; sleep 0.02; done
[ -s "$work/port" ] || { echo "bkoauth-mhd-app did not start:" >&2; cat "$work/app.log" >&2; exit 1; }

"$py" - "$work" "$(cat "$work/port")" <<'EOF'
import base64, hashlib, hmac, json, sys, time, urllib.request
import jwt

work, port = sys.argv[1], int(sys.argv[2])
key = open(f"{work}/gw.key").read()
pub = open(f"{work}/gw.pub").read()
other = open(f"{work}/other.key").read()
now = int(time.time())

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def raw(header, payload, sign=None):
    h = b64(json.dumps(header).encode()); p = b64(json.dumps(payload).encode())
    sig = sign(f"{h}.{p}".encode()) if sign else b""
    return f"{h}.{p}.{b64(sig)}"

def claims(**kw):
    c = {"iss": "APIGW", "app": {"app_code": "gw-app", "verified": True},
         "user": {"username": "alice", "verified": True}, "exp": now + 300}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}

cases = [  # (name, token, expected message prefix or None for accepted)
    ("valid", jwt.encode(claims(), key, algorithm="RS256"), None),
    ("valid, kid and iat", jwt.encode(claims(iat=now), key, algorithm="RS256", headers={"kid": "k1"}), None),
    ("valid, nbf now", jwt.encode(claims(nbf=now), key, algorithm="RS256"), None),
    ("valid, float exp", jwt.encode(claims(exp=now + 300.75), key, algorithm="RS256"), None),
    ("valid, within leeway", jwt.encode(claims(exp=now - 30), key, algorithm="RS256"), None),
    ("expired", jwt.encode(claims(exp=now - 3600), key, algorithm="RS256"), "token expired"),
    ("not yet valid", jwt.encode(claims(nbf=now + 3600), key, algorithm="RS256"), "token not yet valid"),
    ("wrong issuer", jwt.encode(claims(iss="someone"), key, algorithm="RS256"), "wrong issuer"),
    ("missing issuer", jwt.encode(claims(iss=None), key, algorithm="RS256"), "missing issuer"),
    ("missing exp", jwt.encode(claims(exp=None), key, algorithm="RS256"), "malformed token"),
    ("other key", jwt.encode(claims(), other, algorithm="RS256"), "bad signature"),
    ("RS512", jwt.encode(claims(), key, algorithm="RS512"), "algorithm not allowed"),
    ("PS256", jwt.encode(claims(), key, algorithm="PS256"), "algorithm not allowed"),
    ("alg none", raw({"alg": "none", "typ": "JWT"}, claims()), "algorithm not allowed"),
    ("HS256 keyed with the public key",
     raw({"alg": "HS256", "typ": "JWT"}, claims(), lambda m: hmac.new(pub.encode(), m, hashlib.sha256).digest()),
     "algorithm not allowed"),
    ("garbage", "not-a-jwt", "malformed token"),
]
good = jwt.encode(claims(), key, algorithm="RS256")
evil = jwt.encode(claims(user={"username": "admin", "verified": True}), other, algorithm="RS256")
cases.append(("tampered payload", good.split(".")[0] + "." + evil.split(".")[1] + "." + good.split(".")[2],
              "bad signature"))

def pyjwt_accepts(token):
    try:
        jwt.decode(token, pub, algorithms=["RS256"], issuer="APIGW", leeway=60,
                   options={"require": ["exp", "iss"]})
        return True
    except jwt.PyJWTError:
        return False

failures = 0
for name, token, expected in cases:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/check", headers={"X-Bkapi-Jwt": token})
    with urllib.request.urlopen(req, timeout=30) as r:
        status, body = r.status, r.read().decode()
    answer = json.loads(body)
    accepted = answer["result"] is True
    problems = []
    if status != 200:
        problems.append(f"HTTP {status}")
    if accepted != pyjwt_accepts(token):
        problems.append(f"PyJWT {'accepts' if not accepted else 'refuses'} it, the service does not")
    if expected is None:
        if not accepted:
            problems.append(f"refused: {answer['message']}")
        elif (answer["data"]["app_code"], answer["data"]["username"]) != ("gw-app", "alice"):
            problems.append(f"wrong app/user: {answer['data']}")
    else:
        if accepted:
            problems.append("accepted")
        elif not answer["message"].startswith(expected):
            problems.append(f"message {answer['message']!r}, expected {expected!r}...")
        elif body != json.dumps({"result": False, "data": None, "message": answer["message"]}):
            problems.append(f"body is not Django's JsonResponse layout: {body}")
        elif token.split(".")[-1] and len(token.split(".")[-1]) > 8 and token.split(".")[-1] in body:
            problems.append("the token's signature is in the body")
    print(f"{'ok  ' if not problems else 'FAIL'} {name}" + (": " + "; ".join(problems) if problems else ""))
    failures += bool(problems)

# no header at all
with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/check", timeout=30) as r:
    body = r.read().decode()
msg = json.loads(body)["message"]
ok = msg.startswith("X-Bkapi-Jwt header is missing or empty") and body == json.dumps(
    {"result": False, "data": None, "message": msg})
print(f"{'ok  ' if ok else 'FAIL'} no header: {body}")
failures += not ok
sys.exit(1 if failures else 0)
EOF
echo "PyJWT interoperability: every decision matched"
