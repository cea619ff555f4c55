// Package faultauthz is a custom authorizer (DESIGN.md §4) that misbehaves on request: a
// loopback HTTP server whose answer to each call is chosen by the identity value the engine
// sends (header "token" by default: "timeout", "huge.17", ...) or, failing that, by a
// settable default. It answers good allows and denies, and every fault a function can
// commit: hanging past the caller's timeout, 5xx, TCP resets, dripping bytes, a 100 MB answer,
// redirects, malformed and contradictory JSON, bytes that are not HTTP, and "flip", which
// cycles through the faults call by call. It counts what it served.
//
// The answer format follows the last segment of the request path: ".../apig", ".../tencent"
// or ".../mpaas" (anything else is APIG), so one server backs authorizers of every format;
// give each authorizer its own path to count its calls apart.
//
// It is a normal package so that the fault tests and the load generator's soak share it.
package faultauthz

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is what the server does with one call.
type Mode string

// Modes.
const (
	// Allow answers a well-formed allow with a context {"user":"fault-user","mode":"allow"}
	// (APIG, MPaaS; Tencent has no context).
	Allow Mode = "allow"
	// Deny answers a well-formed deny.
	Deny Mode = "deny"
	// Timeout sends nothing until the caller gives up (or Options.HangFor passes, then it
	// answers an allow: a caller without a deadline would be let in late).
	Timeout Mode = "timeout"
	// Status5xx answers 500 (with an allow body), 502, 503 or 504, in turn.
	Status5xx Mode = "5xx"
	// Reset resets the connection (TCP RST) without answering.
	Reset Mode = "reset"
	// Drip answers 200 and a well-formed allow (after 100 spaces) one byte every
	// Options.DripEvery, so the answer is complete only long after any sane timeout while
	// bytes keep arriving.
	Drip Mode = "drip"
	// Huge answers a 100 MB allow (Options.HugeBytes): with Content-Length and chunked, in
	// turn. Read to the end it would be a valid allow.
	Huge Mode = "huge"
	// Redirect answers 301, 302, 303, 307 or 308, in turn, to a path of this server that
	// allows (and counts in Followed).
	Redirect Mode = "redirect"
	// Malformed answers 200 with a body that is not exactly one JSON object of the format
	// (truncated, trailing data, a BOM, single quotes, HTML, an array, ...), in turn.
	Malformed Mode = "malformed"
	// Contradictory answers 200 with JSON that says allow and deny at once or uses wrong
	// types: duplicate keys with different values, keys differing only in case, allow plus
	// deny fields, a wrapped answer with fields beside it, a CRLF in a context value, ...
	Contradictory Mode = "contradictory"
	// Garbage writes bytes that are not HTTP (an SSH banner, a TLS alert, NULs) and closes.
	Garbage Mode = "garbage"
	// Flip serves Faults[n % len(Faults)] on its n-th call.
	Flip Mode = "flip"
)

// Faults are the modes Flip cycles through, in order: every mode but Allow, Deny and Flip.
var Faults = []Mode{Timeout, Status5xx, Reset, Drip, Huge, Redirect, Malformed, Contradictory, Garbage}

// Modes lists every mode.
var Modes = append([]Mode{Allow, Deny}, append(append([]Mode(nil), Faults...), Flip)...)

// MayDegrade reports whether DESIGN.md lets failurePolicy: Allow turn m into a degraded
// allow: the function is down (it times out, cannot be reached or answers 5xx). A reset or a
// peer that does not speak HTTP is unreachable; a drip is a timeout. Flip may, for its
// degradable turns.
func (m Mode) MayDegrade() bool {
	switch m {
	case Timeout, Status5xx, Reset, Drip, Garbage, Flip:
		return true
	}
	return false
}

// Options configures a Server; zero values take the defaults.
type Options struct {
	// IdentityHeader is the identity header (in the event's "headers") whose value chooses
	// the mode: the mode's name, optionally followed by "." and anything (a nonce, so that
	// the engine's cache does not answer for the server). Default "token".
	IdentityHeader string
	// Default is the mode for calls whose identity names none. Default Deny.
	Default Mode
	// HangFor bounds how long Timeout hangs (default 30s).
	HangFor time.Duration
	// DripEvery is the pause between two bytes of Drip (default 100ms).
	DripEvery time.Duration
	// HugeBytes is the size of Huge's answer (default 100 MB).
	HugeBytes int64
}

// Key identifies a counter: the request path, the mode served and whether Flip chose it.
type Key struct {
	Path string
	Mode Mode
	Flip bool
}

// Server is a running fault authorizer. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL, http://127.0.0.1:port, without a trailing slash.
	URL string

	opt     Options
	hs      *http.Server
	done    chan struct{}
	handles sync.WaitGroup // Add only under mu while !closing, so Close may Wait
	closed  sync.Once

	def      atomic.Value // Mode
	flip     atomic.Uint64
	variant  [numVariantCounters]atomic.Uint64
	followed atomic.Int64

	mu      sync.Mutex
	closing bool
	counts  map[Key]int64
}

var discardLog = log.New(io.Discard, "", 0)

const followedPrefix = "/followed"

// Start serves a fault authorizer on a loopback port until Close.
func Start(opt Options) (*Server, error) {
	if opt.IdentityHeader == "" {
		opt.IdentityHeader = "token"
	}
	if opt.Default == "" {
		opt.Default = Deny
	}
	if !validMode(opt.Default) {
		return nil, errors.New("faultauthz: unknown default mode " + string(opt.Default))
	}
	if opt.HangFor <= 0 {
		opt.HangFor = 30 * time.Second
	}
	if opt.DripEvery <= 0 {
		opt.DripEvery = 100 * time.Millisecond
	}
	if opt.HugeBytes <= 0 {
		opt.HugeBytes = 100 << 20
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:    "http://" + ln.Addr().String(),
		opt:    opt,
		done:   make(chan struct{}),
		counts: make(map[Key]int64),
	}
	s.def.Store(opt.Default)
	s.hs = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLog}
	go func() { _ = s.hs.Serve(ln) }()
	return s, nil
}

// Close stops the server: it ends hanging and dripping calls, closes every connection and
// waits for the handlers to return.
func (s *Server) Close() {
	s.closed.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		close(s.done)
		_ = s.hs.Close()
		s.handles.Wait()
	})
}

// SetDefault sets the mode of calls whose identity names none; an unknown mode is ignored.
func (s *Server) SetDefault(m Mode) {
	if validMode(m) {
		s.def.Store(m)
	}
}

// Calls returns how many calls were served in mode m, on any path, Flip's turns included
// (Calls(Flip) is how many calls asked for Flip).
func (s *Server) Calls(m Mode) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for k, v := range s.counts {
		if k.Mode == m || (m == Flip && k.Flip) {
			n += v
		}
	}
	return n
}

// Counts returns a copy of every counter.
func (s *Server) Counts() map[Key]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[Key]int64, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// Total returns how many calls were served (followed redirects not included).
func (s *Server) Total() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, v := range s.counts {
		n += v
	}
	return n
}

// Followed returns how many requests followed a redirect: a client that counts here
// follows redirects, which DESIGN.md §4 forbids.
func (s *Server) Followed() int64 { return s.followed.Load() }

// ModeOf returns the mode an identity value chooses, and whether it names one.
func ModeOf(identity string) (Mode, bool) {
	name, _, _ := strings.Cut(identity, ".")
	m := Mode(name)
	return m, validMode(m)
}

func validMode(m Mode) bool {
	for _, k := range Modes {
		if k == m {
			return true
		}
	}
	return false
}

// format is the answer format of a request path.
type format uint8

const (
	apig format = iota
	tencent
	mpaas
)

func formatOf(p string) format {
	switch path.Base(p) {
	case "tencent":
		return tencent
	case "mpaas":
		return mpaas
	}
	return apig
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.handles.Add(1)
	s.mu.Unlock()
	defer s.handles.Done()
	f := formatOf(r.URL.Path)
	if strings.HasPrefix(r.URL.Path, followedPrefix+"/") {
		s.followed.Add(1)
		writeBody(w, allowBody(f))
		return
	}
	var ev struct {
		Headers map[string]string `json:"headers"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	_ = json.Unmarshal(body, &ev)
	m, ok := ModeOf(ev.Headers[s.opt.IdentityHeader])
	if !ok {
		m = s.def.Load().(Mode)
	}
	flipped := m == Flip
	if flipped {
		m = Faults[(s.flip.Add(1)-1)%uint64(len(Faults))]
	}
	s.mu.Lock()
	s.counts[Key{Path: r.URL.Path, Mode: m, Flip: flipped}]++
	s.mu.Unlock()

	switch m {
	case Allow:
		writeBody(w, allowBody(f))
	case Deny:
		writeBody(w, denyBody(f))
	case Timeout:
		s.hang(r, s.opt.HangFor)
		writeBody(w, allowBody(f))
	case Status5xx:
		s.status5xx(w, f)
	case Reset:
		s.hijack(w, func(c net.Conn) {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
		})
	case Drip:
		s.drip(w, r, append(bytes.Repeat([]byte(" "), dripPad), allowBody(f)...))
	case Huge:
		s.huge(w, r, f)
	case Redirect:
		codes := [...]int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect}
		code := codes[s.next(cRedirect)%uint64(len(codes))]
		w.Header().Set("Location", followedPrefix+r.URL.Path)
		w.WriteHeader(code)
		_, _ = w.Write(allowBody(f))
	case Malformed:
		vs := malformedBodies(f)
		writeBody(w, vs[s.next(cMalformed)%uint64(len(vs))])
	case Contradictory:
		vs := contradictoryBodies[f]
		writeBody(w, []byte(vs[s.next(cContradictory+int(f))%uint64(len(vs))]))
	case Garbage:
		vs := garbage
		g := vs[s.next(cGarbage)%uint64(len(vs))]
		s.hijack(w, func(c net.Conn) { _, _ = c.Write(g) })
	}
}

// Variant counters: each mode with variants serves them in turn.
const (
	cStatus = iota
	cHuge
	cRedirect
	cMalformed
	cGarbage
	cContradictory     // + format
	numVariantCounters = cContradictory + 3
)

func (s *Server) next(c int) uint64 { return s.variant[c].Add(1) - 1 }

// hang waits for the caller to go away, the server to close or d to pass.
func (s *Server) hang(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-s.done:
	case <-t.C:
	}
}

func (s *Server) status5xx(w http.ResponseWriter, f format) {
	switch s.next(cStatus) % 4 {
	case 0: // a crash whose body still says allow: only the status counts
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write(allowBody(f))
	case 1:
		http.Error(w, "upstream connect error or disconnect/reset before headers", http.StatusBadGateway)
	case 2:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
	default:
		http.Error(w, "upstream request timeout", http.StatusGatewayTimeout)
	}
}

// hijack takes the connection over, lets do act on it (write, set linger) and closes it.
func (s *Server) hijack(w http.ResponseWriter, do func(net.Conn)) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("faultauthz: the connection cannot be hijacked")
	}
	c, _, err := hj.Hijack()
	if err != nil {
		return
	}
	do(c)
	_ = c.Close()
}

func (s *Server) drip(w http.ResponseWriter, r *http.Request, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	fl.Flush()
	t := time.NewTicker(s.opt.DripEvery)
	defer t.Stop()
	for i := range body {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-t.C:
		}
		if _, err := w.Write(body[i : i+1]); err != nil {
			return
		}
		fl.Flush()
	}
}

// dripPad is the whitespace Drip sends before its allow, so that even the shortest answer
// takes 100 pauses.
const dripPad = 100

// hugeChunk is the filler Huge writes, shared by every call.
var hugeChunk = bytes.Repeat([]byte("x"), 64<<10)

// huge writes an allow padded to HugeBytes: {"status":"allow","pad":"xxx...x"}, declared
// with Content-Length or chunked, in turn. It stops when the caller goes away.
func (s *Server) huge(w http.ResponseWriter, r *http.Request, f format) {
	head, tail := hugeEnds(f)
	pad := s.opt.HugeBytes - int64(len(head)+len(tail))
	w.Header().Set("Content-Type", "application/json")
	if s.next(cHuge)%2 == 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(s.opt.HugeBytes, 10))
	}
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(head); err != nil {
		return
	}
	for pad > 0 {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		default:
		}
		n := min(pad, int64(len(hugeChunk)))
		if _, err := w.Write(hugeChunk[:n]); err != nil {
			return
		}
		pad -= n
	}
	_, _ = w.Write(tail)
}

func hugeEnds(f format) (head, tail []byte) {
	switch f {
	case tencent:
		return []byte(`{"api-auth":true,"pad":"`), []byte(`"}`)
	case mpaas:
		return []byte(`{"success":true,"principal":{"user":"fault-user"},"pad":"`), []byte(`"}`)
	}
	return []byte(`{"status":"allow","context":{"user":"fault-user"},"pad":"`), []byte(`"}`)
}

func writeBody(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func allowBody(f format) []byte {
	switch f {
	case tencent:
		return []byte(`{"api-auth":true}`)
	case mpaas:
		return []byte(`{"success":true,"principal":{"user":"fault-user","mode":"allow"}}`)
	}
	return []byte(`{"status":"allow","context":{"user":"fault-user","mode":"allow"}}`)
}

func denyBody(f format) []byte {
	switch f {
	case tencent:
		return []byte(`{"api-auth":false}`)
	case mpaas:
		return []byte(`{"success":false}`)
	}
	return []byte(`{"status":"deny"}`)
}

// malformedBodies are answers that are not one JSON object of the format; most are an
// allow bent out of shape, so a lenient parser would let the request in.
func malformedBodies(f format) [][]byte {
	a := allowBody(f)
	s := string(a)
	return [][]byte{
		a[:len(a)-1],                            // truncated
		a[:len(a)/2],                            // cut in the middle
		[]byte(s + s),                           // two objects
		[]byte(s + ` trailing`),                 // data after the object
		[]byte("\xef\xbb\xbf" + s),              // a byte-order mark
		[]byte(strings.ReplaceAll(s, `"`, `'`)), // single quotes
		[]byte(s[:len(s)-1] + `,}`),             // trailing comma
		[]byte(`[` + s + `]`),                   // an array
		[]byte(strconv.Quote(s)),                // the object as a JSON string
		[]byte(`allow`),
		[]byte(`true`),
		[]byte(`null`),
		[]byte(``),
		[]byte(`<html><body>{"status":"allow"}</body></html>`),
		[]byte(`{"status":"allow\u0000"}`),
		[]byte(`{"status":"allow "}`),
		[]byte(`{"status":"ALLOW"}`),
		[]byte(`{"api-auth":"yes","success":"yes","status":"yes"}`),
	}
}

// contradictoryBodies are, per format, JSON answers that say allow and deny at once or give
// a field the wrong type.
var contradictoryBodies = [3][]string{
	apig: {
		`{"status":"deny","status":"allow"}`,
		`{"status":"allow","status":"deny"}`,
		`{"status":"allow","Status":"deny"}`,
		`{"STATUS":"deny","status":"allow"}`,
		`{"status":"allow","context":{"user":"fault-user","user":"root"}}`,
		`{"status":true}`,
		`{"status":1}`,
		`{"status":["allow","deny"]}`,
		`{"status":{"allow":true}}`,
		`{"status":null}`,
		`{"status":"allow","context":"admin"}`,
		`{"status":"allow","context":["user","root"]}`,
		`{"status":"allow","context":{"user":{"id":"root"}}}`,
		`{"status":"allow","context":{"user":"a\r\nx-admin: 1"}}`,
		`{"status":"allow","context":{"1user":"root"}}`,
		`{"statusCode":200,"body":"{\"status\":\"allow\"}","status":"deny"}`,
		`{"statusCode":403,"body":"{\"status\":\"allow\"}"}`,
		`{"statusCode":"200","body":"{\"status\":\"allow\"}"}`,
		`{"statusCode":200,"body":{"status":"allow"}}`,
		`{"statusCode":200,"body":"{\"statusCode\":200,\"body\":\"{\\\"status\\\":\\\"allow\\\"}\"}"}`,
		`{"statusCode":200,"body":"{\"status\":\"allow\",\"status\":\"deny\"}"}`,
		`{"statusCode":200,"isBase64Encoded":true,"body":"not base64!"}`,
	},
	tencent: {
		`{"api-auth":true,"api-auth":false}`,
		`{"api-auth":false,"api-auth":true}`,
		`{"api-auth":true,"API-Auth":false}`,
		`{"api-auth":"true"}`,
		`{"api-auth":1}`,
		`{"api-auth":null}`,
		`{"api-auth":[true]}`,
		`{"api-auth":{"allow":true}}`,
		`{"API-AUTH":true}`,
	},
	mpaas: {
		`{"success":true,"success":false}`,
		`{"success":false,"success":true}`,
		`{"success":true,"Success":false}`,
		`{"success":"true"}`,
		`{"success":1}`,
		`{"success":null,"principal":{"user":"fault-user"}}`,
		`{"success":true,"principal":"root"}`,
		`{"success":true,"principal":["root"]}`,
		`{"success":true,"principal":{"user":"a","user":"b"}}`,
		`{"success":true,"principal":{"user":{"id":"root"}}}`,
		`{"success":true,"principal":{"user":"a\nb"}}`,
	},
}

// garbage are replies that are not HTTP at all.
var garbage = [][]byte{
	[]byte("SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n"),
	{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}, // a TLS handshake_failure alert
	bytes.Repeat([]byte{0}, 512),
	[]byte("+OK POP3 server ready\r\n{\"status\":\"allow\"}\r\n"),
	[]byte("{\"status\":\"allow\"}\r\n\r\n"),
}
