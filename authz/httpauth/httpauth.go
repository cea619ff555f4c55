// Package httpauth serves HTTP forward-auth over the decision engine, for nginx
// auth_request, Traefik forwardAuth, Caddy forward_auth and Envoy's HTTP ext_authz. The
// original request is read from X-Forwarded-Method/-Host/-Uri (Traefik, Caddy), from
// X-Original-Method/-URI (nginx; host from X-Forwarded-Host, else Host), or else from the
// request itself (Envoy). Allow is 200 with the upstream headers as response headers; deny
// is the decision's status, headers and JSON body.
package httpauth

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/authz/engine"
)

// Decider is what the front-end needs of the engine.
type Decider interface {
	Decide(ctx context.Context, r *engine.Request) engine.Decision
}

// Handler is the forward-auth endpoint (any path).
type Handler struct {
	Engine Decider
	// TrustedProxies are the peers whose X-Forwarded-For is believed for the client address
	// (allowedCIDRs); from any other peer, the peer's own address is the client.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes bounds the body read when the request itself is the one to decide (Envoy
	// HTTP ext_authz with with_request_body); 0 reads no body.
	MaxBodyBytes int64
	// Observe, when set, is called with every request, its decision and the time taken.
	Observe func(r *engine.Request, d *engine.Decision, took time.Duration)
}

// hop-by-hop and forward-auth headers that describe the auth subrequest, not the original.
var skip = map[string]bool{
	"x-forwarded-method": true, "x-forwarded-host": true, "x-forwarded-uri": true, "x-forwarded-proto": true,
	"x-original-method": true, "x-original-uri": true, "x-original-url": true,
	"connection": true, "keep-alive": true, "te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
	"proxy-connection": true, "content-length": true,
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	r := h.Convert(req)
	d := h.Engine.Decide(req.Context(), &r)
	if h.Observe != nil {
		h.Observe(&r, &d, time.Since(start))
	}
	out := w.Header()
	if d.Allowed() {
		for _, u := range d.Upstream {
			out[http.CanonicalHeaderKey(u.Name)] = []string{u.Value}
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	for _, dh := range d.DenyHeaders() {
		out[http.CanonicalHeaderKey(dh.Name)] = []string{dh.Value}
	}
	w.WriteHeader(d.Status())
	_, _ = w.Write(d.Body())
}

// Convert reads the original request out of a forward-auth request.
func (h *Handler) Convert(req *http.Request) engine.Request {
	r := engine.Request{Method: req.Method, Authority: req.Host, Target: req.URL.RequestURI()}
	fwd := req.Header.Get("X-Forwarded-Uri") != "" || req.Header.Get("X-Forwarded-Method") != ""
	orig := req.Header.Get("X-Original-Uri") != "" || req.Header.Get("X-Original-Method") != ""
	switch {
	case fwd:
		r.Method = req.Header.Get("X-Forwarded-Method")
		r.Target = req.Header.Get("X-Forwarded-Uri")
		if v := req.Header.Get("X-Forwarded-Host"); v != "" {
			r.Authority = v
		}
	case orig:
		r.Method = req.Header.Get("X-Original-Method")
		r.Target = req.Header.Get("X-Original-Uri")
		if v := req.Header.Get("X-Forwarded-Host"); v != "" {
			r.Authority = v
		}
	default:
		// The request-target as sent (absolute-form targets reduced to path and query).
		if strings.HasPrefix(req.RequestURI, "/") {
			r.Target = req.RequestURI
		}
		if h.MaxBodyBytes > 0 && req.Body != nil {
			body, err := io.ReadAll(io.LimitReader(req.Body, h.MaxBodyBytes+1))
			if err == nil && int64(len(body)) <= h.MaxBodyBytes {
				r.Body, r.BodyKnown = body, true
			}
		}
	}
	r.Headers = make([]engine.Header, 0, len(req.Header)+1)
	for k, vs := range req.Header {
		name := strings.ToLower(k)
		if skip[name] {
			continue
		}
		for _, v := range vs {
			r.Headers = append(r.Headers, engine.Header{Name: name, Value: v})
		}
	}
	if len(req.TransferEncoding) > 0 {
		r.Headers = append(r.Headers, engine.Header{Name: "transfer-encoding", Value: strings.Join(req.TransferEncoding, ",")})
	} else if req.ContentLength > 0 && (fwd || orig) {
		// The auth subrequest has no body of its own; the original's length is unknown.
	} else if req.ContentLength > 0 {
		r.Headers = append(r.Headers, engine.Header{Name: "content-length", Value: strconv.FormatInt(req.ContentLength, 10)})
	}
	r.Source = h.clientAddr(req)
	return r
}

// clientAddr is the peer, or, when the peer is a trusted proxy, the right-most address of
// X-Forwarded-For that is not itself a trusted proxy.
func (h *Handler) clientAddr(req *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !h.trusted(peer) {
		return peer
	}
	xff := req.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return peer // unparseable: do not guess
			}
			a = a.Unmap()
			if !h.trusted(a) {
				return a
			}
			peer = a
		}
	}
	return peer
}

func (h *Handler) trusted(a netip.Addr) bool {
	for _, p := range h.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
