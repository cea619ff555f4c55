package main

import (
	"context"
	"fmt"
	"math/bits"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// hist is a log-linear latency histogram (as HdrHistogram): 128 sub-buckets per power of
// two, so any recorded value is known within 1%, in fixed memory.
type hist struct {
	counts [64 * subBuckets]uint64
	n      uint64
}

const (
	subBits    = 7
	subBuckets = 1 << subBits
)

func bucketOf(ns int64) int {
	if ns < subBuckets {
		if ns < 0 {
			return 0
		}
		return int(ns)
	}
	e := bits.Len64(uint64(ns)) - subBits - 1
	return (e+1)*subBuckets + int(ns>>e) - subBuckets
}

// bucketValue is the middle of bucket i, in ns.
func bucketValue(i int) int64 {
	if i < subBuckets {
		return int64(i)
	}
	e := i/subBuckets - 1
	m := int64(i%subBuckets + subBuckets)
	return m<<e + (int64(1)<<e)/2
}

func (h *hist) record(ns int64) { h.counts[bucketOf(ns)]++; h.n++ }

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0 < q <= 1) in ns.
func (h *hist) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return bucketValue(i)
		}
	}
	return bucketValue(len(h.counts) - 1)
}

// tally is what one stream saw of one server.
type tally struct {
	hist       hist
	checks     uint64
	unexpected uint64
	rpcErrors  uint64
	// faultAllowNotDegraded counts allows of a misbehaving authorizer's identity without
	// x-portcullis-degraded: true (soak).
	faultAllowNotDegraded uint64
	faultAllowDegraded    uint64
}

func (t *tally) merge(o *tally) {
	t.hist.merge(&o.hist)
	t.checks += o.checks
	t.unexpected += o.unexpected
	t.rpcErrors += o.rpcErrors
	t.faultAllowNotDegraded += o.faultAllowNotDegraded
	t.faultAllowDegraded += o.faultAllowDegraded
}

// target is one server under load.
type target struct {
	name    string // "floor" or "portcullis"
	floor   bool   // answers OK to everything
	pid     int
	clients []authv3.AuthorizationClient
}

// load drives a request pool at fixed concurrency: streams goroutines, each sending one
// Check at a time over clients[stream % len(clients)].
type load struct {
	streams int
	mu      sync.Mutex
	entries []entry // the pool; replaced by setPool (re-signing in the soak)
	bad     []string
	badN    int
	// per stream, per target name
	tallies []map[string]*tally
	clones  []map[int]*authv3.CheckRequest // per stream: own copies of entries with tokenPrefix
	next    []int
	ctr     []uint64
}

func newLoad(streams int, entries []entry) *load {
	l := &load{streams: streams, entries: entries}
	l.tallies = make([]map[string]*tally, streams)
	l.clones = make([]map[int]*authv3.CheckRequest, streams)
	l.next = make([]int, streams)
	l.ctr = make([]uint64, streams)
	for s := range streams {
		l.tallies[s] = map[string]*tally{}
		l.clones[s] = map[int]*authv3.CheckRequest{}
		l.next[s] = s * len(entries) / streams
	}
	return l
}

// setPool replaces the pool (between rounds only).
func (l *load) setPool(entries []entry) {
	l.entries = entries
	for s := range l.streams {
		l.clones[s] = map[int]*authv3.CheckRequest{}
	}
}

// reset forgets what was measured (after the warm-up).
func (l *load) reset() {
	for s := range l.streams {
		l.tallies[s] = map[string]*tally{}
	}
	l.mu.Lock()
	l.bad, l.badN = nil, 0
	l.mu.Unlock()
}

// total merges the streams' tallies of target name.
func (l *load) total(name string) *tally {
	out := &tally{}
	for s := range l.streams {
		if t := l.tallies[s][name]; t != nil {
			out.merge(t)
		}
	}
	return out
}

// prime sends every request of the pool to t once (the streams share the pool out), so
// that the authorizer cache holds every identity of a cached scenario before measuring.
func (l *load) prime(ctx context.Context, t *target) {
	var wg sync.WaitGroup
	for s := range l.streams {
		tl := &tally{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := len(l.entries) / l.streams
			l.next[s] = s*n - 1
			for range n + 1 {
				l.send(ctx, s, t, tl)
			}
		}()
	}
	wg.Wait()
}

// round runs the load against t for d and returns the wall time it took (until the last
// stream's last answer).
func (l *load) round(ctx context.Context, t *target, d time.Duration) time.Duration {
	var stop atomic.Bool
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	var wg sync.WaitGroup
	start := time.Now()
	for s := range l.streams {
		tl := l.tallies[s][t.name]
		if tl == nil {
			tl = &tally{}
			l.tallies[s][t.name] = tl
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.stream(ctx, s, t, tl, &stop)
		}()
	}
	wg.Wait()
	return time.Since(start)
}

func (l *load) stream(ctx context.Context, s int, t *target, tl *tally, stop *atomic.Bool) {
	for !stop.Load() && ctx.Err() == nil {
		l.send(ctx, s, t, tl)
	}
}

// send sends the stream's next request and checks the answer.
func (l *load) send(ctx context.Context, s int, t *target, tl *tally) {
	client := t.clients[s%len(t.clients)]
	entries := l.entries
	i := l.next[s] + 1
	if i >= len(entries) || i < 0 {
		i = 0
	}
	l.next[s] = i
	e := &entries[i]
	req, token := e.req, ""
	if e.tokenPrefix != "" {
		req = l.clones[s][i]
		if req == nil {
			req = proto.Clone(e.req).(*authv3.CheckRequest)
			l.clones[s][i] = req
		}
		l.ctr[s]++
		token = e.tokenPrefix + strconv.Itoa(s) + "-" + strconv.FormatUint(l.ctr[s], 10)
		req.Attributes.Request.Http.Headers["x-user-token"] = token
	}
	t0 := time.Now()
	resp, err := client.Check(ctx, req)
	took := time.Since(t0)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		tl.rpcErrors++
		tl.unexpected++
		l.note(t, e, token, "rpc error: "+err.Error())
		return
	}
	tl.hist.record(int64(took))
	tl.checks++
	if t.floor {
		if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
			tl.unexpected++
			l.note(t, e, token, resp.String())
		}
		return
	}
	if why := verify(resp, &e.want, token); why != "" {
		tl.unexpected++
		l.note(t, e, token, why)
	}
	if e.want.fault && resp.GetOkResponse() != nil {
		if header(resp, "x-portcullis-degraded") == "true" {
			tl.faultAllowDegraded++
		} else {
			tl.faultAllowNotDegraded++
		}
	}
}

// header returns an upstream header set by an OK response.
func header(resp *authv3.CheckResponse, name string) string {
	for _, h := range resp.GetOkResponse().GetHeaders() {
		if h.GetHeader().GetKey() == name {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}

// verify compares an answer with what was expected; "" when it matches.
func verify(resp *authv3.CheckResponse, want *expect, token string) string {
	code := codes.Code(resp.GetStatus().GetCode())
	if want.orDegraded && code == codes.OK && header(resp, "x-portcullis-degraded") == "true" {
		return ""
	}
	if code != want.code {
		return fmt.Sprintf("got %v (%s, HTTP %d), want %v", code, resp.GetStatus().GetMessage(), resp.GetDeniedResponse().GetStatus().GetCode(), want.code)
	}
	if code != codes.OK {
		if got := int(resp.GetDeniedResponse().GetStatus().GetCode()); got != want.httpStatus {
			return fmt.Sprintf("got HTTP %d, want %d", got, want.httpStatus)
		}
		return ""
	}
	if want.credential != "" {
		if got := header(resp, "x-portcullis-credential"); got != want.credential {
			return fmt.Sprintf("x-portcullis-credential %q, want %q", got, want.credential)
		}
	}
	user := want.user
	if token != "" && !want.degraded { // a new identity per send
		user = userOf(token)
	}
	if user != "" {
		if got := header(resp, "x-user-id"); got != user {
			return fmt.Sprintf("x-user-id %q, want %q", got, user)
		}
	}
	if got := header(resp, "x-portcullis-degraded") == "true"; got != want.degraded {
		return fmt.Sprintf("x-portcullis-degraded %v, want %v", got, want.degraded)
	}
	return ""
}

func (l *load) note(t *target, e *entry, token, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.badN++
	if len(l.bad) < 5 {
		h := e.req.GetAttributes().GetRequest().GetHttp()
		l.bad = append(l.bad, fmt.Sprintf("%s: %s %s%s token=%q: %s", t.name, h.GetMethod(), h.GetHost(), h.GetPath(), token, why))
	}
}
