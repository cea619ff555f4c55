#!/usr/bin/env bash
# `make run`: Portcullis serving config/samples from files, next to the sample authorizer of
# the APIG two-factor example, with curl lines that show an allow and each kind of deny.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/bin"
cd "$ROOT"

go build -o "$BIN/sample-authorizer" ./hack/sample-authorizer
"$BIN/sample-authorizer" -addr 127.0.0.1:9100 -token demo-token -test demo &
AUTHZ=$!
trap 'kill $AUTHZ 2>/dev/null || true' EXIT

CODE=5f0c8a1e7b3d4c29a6e1f08b2d7c3e95mobileapp
FA="curl -s -i localhost:9002 -H 'X-Forwarded-Host: api.example.com'"
cat <<MSG

Portcullis is starting on :9001 (Envoy ext_authz gRPC) and :9002 (HTTP forward-auth), with
/readyz on :8081 and /metrics on :8080. In another terminal, try (forward-auth, Traefik style):

  # 200: AppCode (factor 1) + the authorizer's token and test (factor 2); see the X-Portcullis-* and X-Auth-* headers
  $FA -H 'X-Forwarded-Method: GET' -H 'X-Forwarded-Uri: /orders/7?test=demo' -H 'X-App-Code: $CODE' -H 'token: demo-token'

  # 200: a signed request (SDK-HMAC-SHA256) sent straight to the endpoint, as Envoy's HTTP ext_authz would
  PORTCULLIS_APP_SECRET=mobile-app-secret-0001-change-me $BIN/portcullis sign --curl --connect 127.0.0.1:9002 \\
      --app-key mobile-app-key-0001 --url 'http://api.example.com/orders/7?test=demo' -H 'token: demo-token' | sh

  # 401 AUTH_HEADER_MISSING: no app credential
  $FA -H 'X-Forwarded-Method: GET' -H 'X-Forwarded-Uri: /orders/7?test=demo' -H 'token: demo-token'

  # 401 AUTH_FAILURE: a wrong AppCode
  $FA -H 'X-Forwarded-Method: GET' -H 'X-Forwarded-Uri: /orders/7?test=demo' -H 'X-App-Code: wrong-code-wrong-code-wrong-code-00' -H 'token: demo-token'

  # 401 AUTHORIZER_IDENTITIES_FAILURE: the identity source "test" is missing
  $FA -H 'X-Forwarded-Method: GET' -H 'X-Forwarded-Uri: /orders/7' -H 'X-App-Code: $CODE' -H 'token: demo-token'

  # 403 ACCESS_DENIED: the authorizer says no
  $FA -H 'X-Forwarded-Method: GET' -H 'X-Forwarded-Uri: /orders/7?test=demo' -H 'X-App-Code: $CODE' -H 'token: wrong'

  # 404 ROUTE_NOT_FOUND, and 400 REQUEST_PARAMETERS_FAILURE for an ambiguous path
  $FA -H 'X-Forwarded-Method: GET' -H 'X-Forwarded-Uri: /nothing-here'
  $FA -H 'X-Forwarded-Method: GET' -H 'X-Forwarded-Uri: /orders/..%2Fadmin'

  # 200: the anonymous health route
  $FA -H 'X-Forwarded-Method: GET' -H 'X-Forwarded-Uri: /healthz'

  # Why was it decided so? The same question, offline:
  $BIN/portcullis check --files config/samples --url 'http://api.example.com/orders/7?test=demo' -H 'X-App-Code: $CODE' -H 'token: demo-token'

MSG
"$BIN/portcullis" serve --source=files --files=config/samples --log-development "$@"
