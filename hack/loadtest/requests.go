package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/portcullis-dev/portcullis/authz/signing"
)

// expect is the answer a request must get from Portcullis (the FLOOR answers OK to all).
type expect struct {
	code       codes.Code // gRPC status code of the CheckResponse
	httpStatus int        // denied_response status when code != OK
	credential string     // allow: x-portcullis-credential must be this ("" = not checked)
	user       string     // allow: x-user-id must be this ("" = not checked)
	degraded   bool       // allow: x-portcullis-degraded: true must be (and otherwise must not be) set
	fault      bool       // the authorizer misbehaves for this identity (soak)
	// orDegraded also accepts an allow with x-portcullis-degraded: true: on a failurePolicy:
	// Allow authorizer, any answer that comes later than its timeout (a busy machine) is one.
	orDegraded bool
}

// entry is one request of a pool with its expected answer.
type entry struct {
	req *authv3.CheckRequest
	// tokenPrefix, when set, makes every send carry a new identity: x-user-token is set to
	// tokenPrefix + a per-stream counter (the entry is then cloned per stream).
	tokenPrefix string
	want        expect
}

// envoyRequest is a CheckRequest shaped as Envoy's (and Istio's) HTTP ext_authz filter sends
// it: headers as a map with the pseudo-headers and Host folded into :authority, the request
// id, the source and destination socket addresses.
func envoyRequest(rng *rand.Rand, method, authority, pathQuery string, headers map[string]string) *authv3.CheckRequest {
	id := fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff)
	h := map[string]string{
		":authority": authority, ":method": method, ":path": pathQuery, ":scheme": "https",
		"x-request-id": id, "user-agent": "apig-sdk-go/1.0 (loadtest)", "accept": "application/json",
		"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.9", "x-envoy-external-address": "203.0.113.9",
		"x-envoy-expected-rq-timeout-ms": "15000", "content-type": "application/json",
	}
	for k, v := range headers {
		h[k] = v
	}
	sock := func(ip string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: sock("10.244.1.17", 40000+rng.Uint32N(20000))},
		Destination: &authv3.AttributeContext_Peer{Address: sock("10.244.2.5", 8443)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: strconv.FormatUint(rng.Uint64(), 10), Method: method, Headers: h, Path: pathQuery, Host: authority,
			Scheme: "https", Protocol: "HTTP/1.1",
		}},
	}}
}

// builder makes the requests of a world.
type builder struct {
	w   world
	rng *rand.Rand
	now time.Time // X-Sdk-Date of signed requests
}

func (bd *builder) path(b int) string {
	return fmt.Sprintf("%s/%d?page=%d&lang=en", kindPath[bd.w.kindOf(b)], bd.rng.IntN(100000), bd.rng.IntN(10))
}

// pick returns a random credential bound to binding b.
func (bd *builder) pick(b int) int { return bd.w.cred(b, bd.rng.IntN(bd.w.credsPer())) }

// allow is a request on binding b that Portcullis allows, with identity token (for the
// two-factor kinds).
func (bd *builder) allow(b int, token string) entry {
	w := bd.w
	k := w.kindOf(b)
	switch k {
	case kindAnonymous:
		return entry{req: envoyRequest(bd.rng, "GET", w.host(b), bd.path(b), nil), want: expect{code: codes.OK}}
	case kindSignature:
		c := bd.pick(b)
		return entry{req: bd.signed(b, c), want: expect{code: codes.OK, credential: credentialHeader(c)}}
	case kindAppCode:
		c := bd.pick(b)
		return entry{req: envoyRequest(bd.rng, "GET", w.host(b), bd.path(b), map[string]string{"x-app-code": appCode(c)}),
			want: expect{code: codes.OK, credential: credentialHeader(c)}}
	default: // two-factor
		c := bd.pick(b)
		return entry{req: envoyRequest(bd.rng, "GET", w.host(b), bd.path(b), map[string]string{"x-app-code": appCode(c), "x-user-token": token}),
			want: expect{code: codes.OK, credential: credentialHeader(c), user: userOf(token)}}
	}
}

// userOf is the user the local authorizer puts in its context for an allowed token.
func userOf(token string) string { return "user-" + token }

// signed is a GET on binding b signed by credential c as the APIG SDKs sign it
// (content-type, host and x-sdk-date).
func (bd *builder) signed(b, c int) *authv3.CheckRequest {
	w := bd.w
	pq := bd.path(b)
	date := bd.now.UTC().Format(signing.DateFormat)
	hdr := map[string]string{"x-sdk-date": date, "content-type": "application/json", "host": w.host(b)}
	path, query := pq, ""
	for i := 0; i < len(pq); i++ {
		if pq[i] == '?' {
			path, query = pq[:i], pq[i+1:]
			break
		}
	}
	auth, err := signing.Sign([]byte(appSecret(c)), appKey(c), signing.Request{
		Method: "GET", Path: path, Query: query, Host: w.host(b),
		Header: func(n string) (string, bool) { v, ok := hdr[n]; return v, ok },
	}, []string{"content-type", "host", "x-sdk-date"})
	if err != nil {
		panic(err) // a bug in this program
	}
	return envoyRequest(bd.rng, "GET", w.host(b), pq, map[string]string{"x-sdk-date": date, "authorization": auth})
}

// noRoute is a request to a known host on a path no route claims.
func (bd *builder) noRoute(b int) entry {
	return entry{req: envoyRequest(bd.rng, "GET", bd.w.host(b), fmt.Sprintf("/nothing/here/%d", bd.rng.IntN(1000)), nil),
		want: expect{code: codes.NotFound, httpStatus: 404}}
}

// badAppCode is an AppCode request with a wrong code: 401.
func (bd *builder) badAppCode(b int) entry {
	return entry{req: envoyRequest(bd.rng, "GET", bd.w.host(b), bd.path(b), map[string]string{"x-app-code": appCode(bd.w.nc + 1), "x-user-token": "t"}),
		want: expect{code: codes.Unauthenticated, httpStatus: 401}}
}

// scenarios of the benchmark, in report order.
var scenarioNames = []string{"two-factor", "signature", "appcode", "two-factor-uncached", "anonymous", "no-route"}

// pool is the request pool of a scenario: poolSize requests spread over every binding of the
// scenario's kind.
func pool(w world, scenario string, now time.Time, seed uint64) ([]entry, error) {
	bd := &builder{w: w, rng: newRand(seed), now: now}
	const poolSize = 4096
	var out []entry
	each := func(k kind, f func(b, i int) entry) {
		bs := w.bindingsOfKind(k)
		for i := 0; i < poolSize; i++ {
			out = append(out, f(bs[bd.rng.IntN(len(bs))], i))
		}
	}
	switch scenario {
	case "two-factor":
		each(kindTwoFactor, func(b, i int) entry { return bd.allow(b, fmt.Sprintf("tok-%d", i)) })
	case "signature":
		each(kindSignature, func(b, _ int) entry { return bd.allow(b, "") })
	case "appcode":
		each(kindAppCode, func(b, _ int) entry { return bd.allow(b, "") })
	case "two-factor-uncached":
		each(kindTwoFactorUncached, func(b, _ int) entry {
			e := bd.allow(b, "u")
			e.tokenPrefix = "u-" // the user is checked per send
			return e
		})
	case "anonymous":
		each(kindAnonymous, func(b, _ int) entry { return bd.allow(b, "") })
	case "no-route":
		each(kindTwoFactor, func(b, _ int) entry { return bd.noRoute(b) })
	default:
		return nil, fmt.Errorf("unknown scenario %q (have %v)", scenario, scenarioNames)
	}
	return out, nil
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1)) }
