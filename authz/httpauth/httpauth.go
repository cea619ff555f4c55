// Package httpauth serves HTTP forward-auth over the decision engine, for nginx
// auth_request, Traefik forwardAuth, Caddy forward_auth and Envoy's HTTP ext_authz. The
// original request is read from X-Forwarded-Method/-Host/-Uri (Traefik, Caddy), from
// X-Original-Method/-URI (nginx; host from X-Forwarded-Host, else Host), or else from the
// request itself (Envoy). Allow is 200 with the upstream headers as response headers; deny
// is the decision's status, headers and JSON body.
package httpauth

import (
	"context"
	"errors"
	"fmt"
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

// Mode says which headers carry the original request.
type Mode string

// Modes.
const (
	// ModeAuto reads X-Forwarded-Method/-Uri (Traefik, Caddy) or X-Original-Method/-URI/-URL
	// (nginx, ingress-nginx), else the request itself; a request carrying both families is
	// ambiguous (a client may have added one the proxy does not set) and gets 400.
	ModeAuto Mode = "auto"
	// ModeForwarded reads only X-Forwarded-* (the proxy sets them; X-Original-* are ignored).
	ModeForwarded Mode = "forwarded"
	// ModeOriginal reads only X-Original-* (X-Forwarded-Method/-Uri are ignored).
	ModeOriginal Mode = "original"
	// ModeNone decides the request itself (Envoy's HTTP ext_authz); forwarding headers are
	// ignored.
	ModeNone Mode = "none"
)

// ParseMode checks a --forward-auth-headers value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeAuto, ModeForwarded, ModeOriginal, ModeNone:
		return m, nil
	}
	return "", fmt.Errorf("%q is not auto, forwarded, original or none", s)
}

// Handler is the forward-auth endpoint (any path).
type Handler struct {
	Engine Decider
	// Mode selects the headers that carry the original request (default ModeAuto).
	Mode Mode
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
	r, err := h.Convert(req)
	var d engine.Decision
	if err != nil {
		d = engine.Deny(&r, engine.CodeRequestParametersFailure, err.Error())
	} else {
		d = h.Engine.Decide(req.Context(), &r)
	}
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

// Convert reads the original request out of a forward-auth request. It fails when the
// headers contradict each other (the request must then be denied, never guessed).
func (h *Handler) Convert(req *http.Request) (engine.Request, error) {
	r := engine.Request{Method: req.Method, Authority: req.Host, Target: req.URL.RequestURI()}
	get := req.Header.Get
	fwd := get("X-Forwarded-Uri") != "" || get("X-Forwarded-Method") != ""
	orig := get("X-Original-Uri") != "" || get("X-Original-Url") != "" || get("X-Original-Method") != ""
	mode := h.Mode
	if mode == "" {
		mode = ModeAuto
	}
	switch mode {
	case ModeForwarded:
		orig = false
	case ModeOriginal:
		fwd = false
	case ModeNone:
		fwd, orig = false, false
	}
	var err error
	// A forwarding header given twice is two answers to one question (a proxy that appends
	// rather than sets, after a client sent its own): refuse, never pick one.
	var repeated []string
	if fwd {
		repeated = append(repeated, "X-Forwarded-Method", "X-Forwarded-Uri")
	}
	if orig {
		repeated = append(repeated, "X-Original-Method", "X-Original-Uri", "X-Original-Url")
	}
	if fwd || orig {
		repeated = append(repeated, "X-Forwarded-Host")
	}
	for _, name := range repeated {
		if len(req.Header.Values(name)) > 1 {
			err = fmt.Errorf("the request repeats %s", name)
		}
	}
	switch {
	case err != nil:
	case fwd && orig:
		err = errors.New("the request carries both X-Forwarded-Method/-Uri and X-Original-Method/-URI/-URL; set --forward-auth-headers to the family your proxy sets")
	case fwd:
		r.Method = get("X-Forwarded-Method")
		r.Target = get("X-Forwarded-Uri")
		if v := get("X-Forwarded-Host"); v != "" {
			r.Authority = v
		}
	case orig:
		r.Method = get("X-Original-Method")
		if r.Method == "" {
			r.Method = req.Method
		}
		if v := get("X-Forwarded-Host"); v != "" {
			r.Authority = v
		}
		r.Target = get("X-Original-Uri")
		if u := get("X-Original-Url"); u != "" { // ingress-nginx: $scheme://$http_host$request_uri
			host, target, ok := splitAbsoluteURL(u)
			switch {
			case !ok:
				err = errors.New("X-Original-URL is not an absolute URL")
			case get("X-Forwarded-Host") != "" && !strings.EqualFold(get("X-Forwarded-Host"), host):
				err = errors.New("X-Original-URL and X-Forwarded-Host name different hosts")
			case r.Target != "" && r.Target != target:
				err = errors.New("X-Original-URL and X-Original-URI name different paths")
			default:
				r.Authority, r.Target = host, target
			}
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
	} else if req.ContentLength > 0 && (fwd || orig || err != nil) {
		// The auth subrequest has no body of its own; the original's length is unknown.
	} else if req.ContentLength > 0 {
		r.Headers = append(r.Headers, engine.Header{Name: "content-length", Value: strconv.FormatInt(req.ContentLength, 10)})
	}
	r.Source = h.clientAddr(req)
	return r, err
}

// splitAbsoluteURL splits "scheme://host/path?query" into host and target without
// re-encoding anything.
func splitAbsoluteURL(u string) (host, target string, ok bool) {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return "", "", false
	}
	i := strings.IndexAny(rest, "/?")
	if i < 0 {
		return rest, "/", rest != ""
	}
	host, target = rest[:i], rest[i:]
	if target[0] == '?' {
		target = "/" + target
	}
	return host, target, host != ""
}

// clientAddr is the peer, or, when the peer is a trusted proxy, the right-most address of
// X-Forwarded-For that is not itself a trusted proxy (the invalid Addr, which no
// allowedCIDRs list contains, when an entry on the way there is not an address).
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
				// Unparseable ("unknown", "1.2.3.4:80", ""): the client is unknown. Not the
				// proxy, whose address an allowedCIDRs list may well hold.
				return netip.Addr{}
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
