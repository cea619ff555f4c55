// Package extauthz serves Envoy's ext_authz v3 gRPC API (envoy.service.auth.v3.Authorization)
// over the decision engine. It converts a CheckRequest into an engine.Request and the
// Decision into a CheckResponse; it holds no policy logic.
package extauthz

import (
	"context"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/portcullis-dev/portcullis/authz/engine"
)

// Decider is what the front-end needs of the engine.
type Decider interface {
	Decide(ctx context.Context, r *engine.Request) engine.Decision
}

// Server implements authv3.AuthorizationServer.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	Engine Decider
	// Observe, when set, is called with every request, its decision and the time taken
	// (metrics, logs).
	Observe func(r *engine.Request, d *engine.Decision, took time.Duration)
}

// NewGRPCServer returns a gRPC server with the Authorization service, the standard health
// service (the caller sets it SERVING once the policy is ready) and reflection.
//
// Streams are served by a pool of streamWorkers goroutines (a stream that finds every worker
// busy gets its own goroutine, as without a pool). A new goroutine per Check starts with a
// small stack and grows it in the gRPC reader and the engine each time: 6% of the CPU of a
// cached check. Check requests are read from the wire by wireCheck, not decoded by the
// generated code. opts come after these, so they may replace them.
func NewGRPCServer(s *Server, opts ...grpc.ServerOption) (*grpc.Server, *health.Server) {
	opts = append([]grpc.ServerOption{grpc.NumStreamWorkers(streamWorkers()), grpc.ForceServerCodecV2(newCheckCodec())}, opts...)
	g := grpc.NewServer(opts...)
	g.RegisterService(&authorizationService, s) // Check requests are read by wireCheck
	h := health.NewServer()
	healthpb.RegisterHealthServer(g, h)
	reflection.Register(g)
	return g, h
}

// streamWorkers is the size of the stream worker pool: 16 per CPU the process may use, enough
// for the checks that wait on an authorizer to leave workers for the others.
func streamWorkers() uint32 { return uint32(16 * runtime.GOMAXPROCS(0)) }

// Check answers one CheckRequest. (The server NewGRPCServer returns does not call it: it
// reads each request from the wire itself and writes the response of an allow, see wireCheck.)
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := time.Now()
	c := &exchange{r: Convert(req)} // one allocation for both: Observe makes them escape
	s.decide(ctx, c, start)
	return Response(&c.r, &c.d), nil
}

// decide fills c.d for c.r and reports it.
func (s *Server) decide(ctx context.Context, c *exchange, start time.Time) {
	c.d = s.Engine.Decide(ctx, &c.r)
	if s.Observe != nil {
		s.Observe(&c.r, &c.d, time.Since(start))
	}
}

type exchange struct {
	r engine.Request
	d engine.Decision
}

// Convert turns a CheckRequest into an engine.Request. Headers come from header_map (Envoy's
// encode_raw_headers) or headers; pseudo-headers are read for method, authority and path
// when the http fields are empty; the body from raw_body or body.
func Convert(req *authv3.CheckRequest) engine.Request {
	h := req.GetAttributes().GetRequest().GetHttp()
	f := httpFields{
		method: h.GetMethod(), host: h.GetHost(), path: h.GetPath(), body: h.GetBody(), rawBody: h.GetRawBody(),
		source: req.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress(),
	}
	if hm := h.GetHeaderMap().GetHeaders(); len(hm) > 0 {
		f.headers = make([]engine.Header, 0, len(hm))
		for _, hv := range hm {
			v := hv.GetValue()
			if raw := hv.GetRawValue(); len(raw) > 0 {
				v = string(raw)
			}
			f.headers = append(f.headers, engine.Header{Name: hv.GetKey(), Value: v})
		}
	} else {
		f.headers = make([]engine.Header, 0, len(h.GetHeaders()))
		for k, v := range h.GetHeaders() {
			f.headers = append(f.headers, engine.Header{Name: k, Value: v})
		}
	}
	return f.request()
}

// httpFields are what Convert reads of a CheckRequest: attributes.request.http, and the
// address of attributes.source.
type httpFields struct {
	method, host, path, body string
	rawBody                  []byte
	// headers are header_map's when it has any, else those of the headers map; names as
	// received.
	headers []engine.Header
	source  string
}

// request makes the engine.Request; it lower-cases the header names in place.
func (f *httpFields) request() engine.Request {
	r := engine.Request{Method: f.method, Authority: f.host, Target: f.path, Headers: f.headers}
	for i := range r.Headers {
		if hd := &r.Headers[i]; !isLower(hd.Name) {
			hd.Name = strings.ToLower(hd.Name)
		}
	}
	for _, hd := range r.Headers {
		switch hd.Name {
		case ":method":
			if r.Method == "" {
				r.Method = hd.Value
			}
		case ":authority":
			if r.Authority == "" {
				r.Authority = hd.Value
			}
		case ":path":
			if r.Target == "" {
				r.Target = hd.Value
			}
		}
	}
	if r.Authority == "" { // HTTP/1.1 without :authority
		r.Authority, _ = r.Header("host")
	}
	if len(f.rawBody) > 0 {
		r.Body, r.BodyKnown = f.rawBody, true
	} else if f.body != "" {
		r.Body, r.BodyKnown = []byte(f.body), true
	}
	if v, _ := r.Header("x-envoy-auth-partial-body"); v == "true" {
		// allow_partial_message cut the body: it is not the body the client signed.
		r.BodyKnown = false
	}
	if f.source != "" {
		if ip, err := netip.ParseAddr(f.source); err == nil {
			r.Source = ip.Unmap()
		}
	}
	return r
}

func isLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return false
		}
	}
	return true
}

// Response turns a Decision into a CheckResponse: OK with the upstream headers (overwrite)
// and every spoofable incoming header in headers_to_remove, or a denied response carrying
// the status, headers and JSON body.
func Response(r *engine.Request, d *engine.Decision) *authv3.CheckResponse {
	if d.Allowed() {
		m := &okMessages{}
		m.status.Code = int32(codes.OK)
		m.ok.Headers = headerOptions(d.Upstream)
		m.ok.HeadersToRemove = appendHeadersToRemove(make([]string, 0, len(d.Remove)+2), r, d)
		m.wrap.OkResponse = &m.ok
		m.resp.Status, m.resp.HttpResponse = &m.status, &m.wrap
		return &m.resp
	}
	code := codes.PermissionDenied
	switch d.Status() {
	case 401:
		code = codes.Unauthenticated
	case 400:
		code = codes.InvalidArgument
	case 404:
		code = codes.NotFound
	case 503:
		code = codes.Unavailable
	case 500:
		code = codes.Internal
	}
	m := &deniedMessages{}
	m.status.Code, m.status.Message = int32(code), d.Code.String()
	m.httpStatus.Code = typev3.StatusCode(d.Status())
	m.denied.Status, m.denied.Headers, m.denied.Body = &m.httpStatus, headerOptions(d.DenyHeaders()), string(d.Body())
	m.wrap.DeniedResponse = &m.denied
	m.resp.Status, m.resp.HttpResponse = &m.status, &m.wrap
	return &m.resp
}

// okMessages and deniedMessages hold the messages of one response in a single allocation
// (the response is built once per request and never copied).
type okMessages struct {
	resp   authv3.CheckResponse
	status rpcstatus.Status
	wrap   authv3.CheckResponse_OkResponse
	ok     authv3.OkHttpResponse
}

type deniedMessages struct {
	resp       authv3.CheckResponse
	status     rpcstatus.Status
	wrap       authv3.CheckResponse_DeniedResponse
	denied     authv3.DeniedHttpResponse
	httpStatus typev3.HttpStatus
}

// headerOptions sets each header with overwrite semantics; the options and values of all
// headers share two allocations.
func headerOptions(hs []engine.Header) []*corev3.HeaderValueOption {
	if len(hs) == 0 {
		return nil
	}
	opts := make([]corev3.HeaderValueOption, len(hs))
	vals := make([]corev3.HeaderValue, len(hs))
	out := make([]*corev3.HeaderValueOption, len(hs))
	for i, h := range hs {
		vals[i].Key, vals[i].Value = h.Name, h.Value
		opts[i].Header, opts[i].AppendAction = &vals[i], corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		out[i] = &opts[i]
	}
	return out
}

// appendHeadersToRemove appends the incoming headers to strip: the exact names of the
// decision, present or not (Envoy ignores absent ones), and every incoming header under one
// of its prefixes; each once, and never a header the decision sets.
func appendHeadersToRemove(out []string, r *engine.Request, d *engine.Decision) []string {
	for i, n := range d.Remove {
		if !setsHeader(d, n) && !slices.Contains(d.Remove[:i], n) {
			out = append(out, n)
		}
	}
	for i, h := range r.Headers {
		if removedByPrefix(d, h.Name) && !setsHeader(d, h.Name) && !slices.Contains(d.Remove, h.Name) &&
			!slices.ContainsFunc(r.Headers[:i], func(e engine.Header) bool { return e.Name == h.Name }) {
			out = append(out, h.Name)
		}
	}
	return out
}

func setsHeader(d *engine.Decision, name string) bool {
	return slices.ContainsFunc(d.Upstream, func(u engine.Header) bool { return u.Name == name })
}

func removedByPrefix(d *engine.Decision, name string) bool {
	return slices.ContainsFunc(d.RemovePrefixes, func(p string) bool { return strings.HasPrefix(name, p) })
}
