// Package authorizer asks custom authorizers (the second factor, DESIGN.md §4) and caches
// their answers. A cache hit takes one shard mutex and allocates nothing; a miss goes
// through single-flight, so concurrent requests carrying the same identity make one HTTP
// call. Every failure is an *Error, and nothing that is not a well-formed allow ever allows
// (failurePolicy: Allow aside, which allows degraded when the function is down).
package authorizer

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/authz/compile"
)

// Call is one second-factor question.
type Call struct {
	Authorizer *compile.Authorizer
	// Binding is the APIBinding the request matched; its UID is part of the cache key and its
	// Ref is sent as requestContext.binding.
	Binding *compile.Binding
	// Credential is the first factor the request presented; nil when the binding has none.
	// Its UID is part of the cache key (see Authorize).
	Credential *compile.Credential
	// Identity holds the value of each of Authorizer.IdentitySources, in order; the engine
	// has checked that all are present and not empty.
	Identity []string
	// Method is the request method; Path the normalised request path, without the query.
	Method, Path string
	// Body is sent base64-encoded when Authorizer.SendBody. Authorize does not keep it.
	Body      []byte
	RequestID string
	// Source is the client address, sent as requestContext.sourceIp; the zero Addr sends "".
	// It is rendered only when the function is called, never on a cache hit.
	Source netip.Addr
}

// Result is the outcome of a call.
type Result struct {
	// Allow is the authorizer's verdict; false is its deny (ACCESS_DENIED).
	Allow bool
	// Context is the validated authorizer context of an allow, sorted by key, values
	// rendered as strings (numbers and booleans in their JSON text). It is shared with the
	// cache and other callers: read it, never modify it. Always nil for a deny.
	Context []KV
	// Degraded means allowed only because failurePolicy is Allow and the function was
	// unreachable, timed out or answered 5xx.
	Degraded bool
	// Cached means answered from the cache.
	Cached bool
}

// KV is one authorizer context entry.
type KV struct{ Key, Value string }

// Failure reasons: the Reason of an *Error, and with "allow" and "deny" the outcomes of
// Stats.Calls. They are a closed set, fit for metric labels.
const (
	ReasonTimeout     = "timeout"     // no complete answer within Authorizer.Timeout
	ReasonUnreachable = "unreachable" // connection refused or reset, DNS, TLS or other transport error
	ReasonStatus      = "status"      // an HTTP status other than 200 and 3xx
	ReasonRedirect    = "redirect"    // a 3xx answer; redirects are never followed
	ReasonOversize    = "oversize"    // an answer larger than Options.MaxAnswerBytes
	ReasonMalformed   = "malformed"   // an answer that is not exactly the configured format
	ReasonContext     = "context"     // an allow whose context breaks the limits of DESIGN.md §4
	ReasonInvalid     = "invalid"     // a Call the engine should never make (no authorizer, URL or binding; identity count mismatch)

	OutcomeAllow = "allow"
	OutcomeDeny  = "deny"
)

// Outcomes lists every key of Stats.Calls.
var Outcomes = [...]string{OutcomeAllow, OutcomeDeny, ReasonTimeout, ReasonUnreachable, ReasonStatus,
	ReasonRedirect, ReasonOversize, ReasonMalformed, ReasonContext, ReasonInvalid}

const (
	oAllow = iota
	oDeny
	oTimeout
	oUnreachable
	oStatus
	oRedirect
	oOversize
	oMalformed
	oContext
	oInvalid
	nOutcomes
)

// Error is returned for every failure to get a verdict (AUTHORIZER_FAILURE).
type Error struct {
	// Reason is one of the Reason constants.
	Reason string
	// Err is the underlying cause, for logs; it may name the authorizer's URL.
	Err error

	msg    string // what Error returns: no URL, no user data, nothing the function sent
	status int    // the HTTP status of a status or redirect failure
}

// Error returns a message safe to show a client: it never contains the URL, user data or
// any part of the function's answer.
func (e *Error) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return "authorizer failure: " + e.Reason
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// StatusCode is the HTTP status of a status or redirect failure, else 0.
func (e *Error) StatusCode() int { return e.status }

// degradable reports whether failurePolicy: Allow turns e into a degraded allow: the
// function is down (timeout, unreachable, 5xx), not misbehaving.
func (e *Error) degradable() bool {
	return e.Reason == ReasonTimeout || e.Reason == ReasonUnreachable || (e.Reason == ReasonStatus && e.status >= 500)
}

func (e *Error) outcome() int {
	for i, o := range Outcomes {
		if o == e.Reason {
			return i
		}
	}
	return oInvalid
}

func failf(reason string, err error, msg string) *Error {
	return &Error{Reason: reason, Err: err, msg: msg}
}

func malformed(detail string) *Error {
	return &Error{Reason: ReasonMalformed, Err: errors.New(detail), msg: "authorizer answer is malformed: " + detail}
}

func badContext(detail string) *Error {
	return &Error{Reason: ReasonContext, Err: errors.New(detail), msg: "authorizer context is invalid: " + detail}
}

func statusError(reason string, code int) *Error {
	msg := "authorizer answered HTTP " + strconv.Itoa(code)
	if reason == ReasonRedirect {
		msg += " (redirects are not followed)"
	}
	return &Error{Reason: reason, Err: errors.New(msg), msg: msg, status: code}
}

// Options configures a Client.
type Options struct {
	// Transport carries the calls. nil: a dedicated *http.Transport sized for many
	// concurrent calls to few hosts (256 idle connections per host, 1024 in all, 90s idle
	// timeout, HTTP/2 over TLS, 2s dial timeout, proxies from the environment).
	Transport http.RoundTripper
	// Now is the clock of the cache. nil: time.Now.
	Now func() time.Time
	// MaxAnswerBytes bounds an answer body; a larger one is an "oversize" failure.
	// 0: 1 MiB.
	MaxAnswerBytes int64
}

// DefaultMaxAnswerBytes is the answer size limit when Options.MaxAnswerBytes is 0.
const DefaultMaxAnswerBytes = 1 << 20

// Client calls custom authorizers and caches their answers. It is safe for concurrent use;
// its cache lives as long as it does, across policy snapshots.
type Client struct {
	rt       http.RoundTripper
	now      func() time.Time
	maxBytes int64

	holders   sync.Map // types.UID → *holder
	lastSweep atomic.Int64

	stripes   [nStripes]stripe // hit and miss counters, spread to avoid one hot cache line
	shared    atomic.Uint64
	evictions atomic.Uint64
	entries   atomic.Int64
	degraded  atomic.Uint64
	calls     [nOutcomes]atomic.Uint64
}

const nStripes = 64

type stripe struct {
	hits, misses atomic.Uint64
	_            [48]byte
}

// New returns a Client.
func New(opt Options) *Client {
	rt := opt.Transport
	if rt == nil {
		rt = NewTransport()
	}
	cl := &Client{
		rt:       rt,
		now:      opt.Now,
		maxBytes: opt.MaxAnswerBytes,
	}
	if cl.now == nil {
		cl.now = time.Now
	}
	if cl.maxBytes <= 0 {
		cl.maxBytes = DefaultMaxAnswerBytes
	}
	return cl
}

// NewTransport returns the transport New uses when Options.Transport is nil. Go's default
// keeps only 2 idle connections per host, so under concurrency most calls would open a new
// connection.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Authorize answers c, from the cache when it can.
//
// A Result with Allow false is the authorizer's deny. An *Error is a failure, except that
// with Authorizer.FailOpen a timeout, unreachable or 5xx failure returns
// Result{Allow: true, Degraded: true} and a nil error (never cached). When ctx ends before
// the answer, Authorize returns ctx.Err(); a call shared with other callers goes on for
// them.
//
// Answers are cached when Authorizer.TTL > 0 (denies when DenyTTL > 0), keyed on the
// authorizer's UID and Revision, the binding's UID, the credential's UID and the identity
// values; failures are never cached. The credential is part of the key because the function
// sees it (requestContext.credential): without it, an allow given to one app would be
// replayed for another app presenting the same identity values.
func (cl *Client) Authorize(ctx context.Context, c Call) (Result, error) {
	a := c.Authorizer
	if a == nil || a.URL == nil || c.Binding == nil || len(c.Identity) != len(a.IdentitySources) {
		cl.calls[oInvalid].Add(1)
		return Result{}, failf(ReasonInvalid, errors.New("invalid authorizer call"), "authorizer call is invalid")
	}
	if a.TTL <= 0 {
		return cl.direct(ctx, &c)
	}
	now := cl.now()
	rc := cl.revCacheFor(a, now)
	if rc == nil {
		return cl.direct(ctx, &c)
	}
	key := cacheKey(a, c.Binding, c.Credential, c.Identity)
	st := &cl.stripes[key[1]%nStripes]
	sh := rc.shard(&key)
	sh.mu.Lock()
	if res, ok := sh.get(cl, &key, now); ok {
		sh.mu.Unlock()
		st.hits.Add(1)
		res.Cached = true
		return res, nil
	}
	f, leader := sh.flights[key], false
	if f == nil {
		f, leader = &flight{done: make(chan struct{})}, true
		if sh.flights == nil {
			sh.flights = make(map[[32]byte]*flight)
		}
		sh.flights[key] = f
	}
	sh.mu.Unlock()
	st.misses.Add(1)
	return cl.await(ctx, &c, rc, sh, &key, f, leader, now)
}

// await is the miss path of Authorize, apart so that the hit path keeps c on the stack.
func (cl *Client) await(ctx context.Context, c *Call, rc *revCache, sh *shard, key *[32]byte, f *flight, leader bool, now time.Time) (Result, error) {
	a := c.Authorizer
	if leader {
		rc.holder.lastMiss.Store(now.UnixNano())
		cl.maybeSweep(now)
		go cl.fly(ctx, a, rc, sh, *key, f, encodeEvent(c))
	} else {
		cl.shared.Add(1)
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	return cl.verdict(a, f.res, f.err)
}

// flight is one HTTP call shared by every concurrent miss on a key.
type flight struct {
	done chan struct{}
	res  Result
	err  *Error
}

// fly makes the call of f on a context detached from the leader's (its values kept) and
// bounded by the authorizer's timeout, caches the answer, and wakes the waiters.
func (cl *Client) fly(parent context.Context, a *compile.Authorizer, rc *revCache, sh *shard, key [32]byte, f *flight, body []byte) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), a.Timeout)
	res, ferr := cl.exchange(ctx, a, body)
	cancel()
	ttl := time.Duration(0)
	if ferr == nil {
		ttl = a.TTL
		if !res.Allow {
			ttl = a.DenyTTL
		}
	}
	sh.mu.Lock()
	delete(sh.flights, key)
	if ttl > 0 {
		sh.put(cl, rc, &key, res, cl.now().Add(ttl))
	}
	sh.mu.Unlock()
	f.res, f.err = res, ferr
	close(f.done)
}

// direct makes an uncached, unshared call bounded by ctx and the authorizer's timeout.
func (cl *Client) direct(ctx context.Context, c *Call) (Result, error) {
	cl.stripes[0].misses.Add(1)
	cctx, cancel := context.WithTimeout(ctx, c.Authorizer.Timeout)
	res, ferr := cl.exchange(cctx, c.Authorizer, encodeEvent(c))
	cancel()
	if ferr != nil && ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	return cl.verdict(c.Authorizer, res, ferr)
}

// verdict applies failurePolicy to the outcome of a call.
func (cl *Client) verdict(a *compile.Authorizer, res Result, err *Error) (Result, error) {
	if err == nil {
		return res, nil
	}
	if a.FailOpen && err.degradable() {
		cl.degraded.Add(1)
		return Result{Allow: true, Degraded: true}, nil
	}
	return Result{}, err
}

// CloseIdleConnections closes the idle connections of the Client's transport (at shutdown).
func (cl *Client) CloseIdleConnections() {
	if c, ok := cl.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Stats are the Client's counters since New, for metrics.
type Stats struct {
	// Hits and Misses count Authorize calls answered from the cache and not (a miss that
	// joined another caller's call counts in Misses and in Shared).
	Hits, Misses, Shared uint64
	// Evictions counts entries dropped to respect an authorizer's maxEntries.
	Evictions uint64
	// Entries is the number of answers held (expired ones included until they are
	// dropped).
	Entries uint64
	// Degraded counts failures turned into allows by failurePolicy: Allow.
	Degraded uint64
	// Calls counts calls by outcome: every key of Outcomes is present ("invalid" counts
	// calls refused before any HTTP request).
	Calls map[string]uint64
}

// Stats returns the current counters.
func (cl *Client) Stats() Stats {
	s := Stats{
		Shared:    cl.shared.Load(),
		Evictions: cl.evictions.Load(),
		Degraded:  cl.degraded.Load(),
		Calls:     make(map[string]uint64, nOutcomes),
	}
	for i := range cl.stripes {
		s.Hits += cl.stripes[i].hits.Load()
		s.Misses += cl.stripes[i].misses.Load()
	}
	if n := cl.entries.Load(); n > 0 {
		s.Entries = uint64(n)
	}
	for i, o := range Outcomes {
		s.Calls[o] = cl.calls[i].Load()
	}
	return s
}
