package authorizer

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-dev/portcullis/authz/compile"
)

// The cache is organised per authorizer UID (a holder), then per Revision (a revCache, with
// its own LRU shards bounded in all by the revision's MaxEntries), then by key.
//
// A holder keeps the current revision and the one before it: requests still evaluated
// against the previous snapshot keep using the previous cache during a policy change
// instead of flushing the new one. The previous cache is dropped at once, all entries
// freed, when a third revision arrives, or lazily by the first request after the previous
// revision's timeout (plus a second) has passed since the change. A request carrying a
// revision of an older generation than the current one is answered without the cache.
//
// Holders of deleted authorizers are swept (at most once a minute, on a miss) once every
// entry they could hold has expired.

// cacheKey is sha256 over the authorizer's UID and Revision, the binding's UID, the
// credential's UID (compile.Credential.AppendUIDKey; a 0x01 byte without a credential) and
// the identity values, each other string length-prefixed.
// It allocates nothing: the input is built on the stack, or for long values (JWTs) in a
// pooled buffer.
func cacheKey(a *compile.Authorizer, b *compile.Binding, cr *compile.Credential, ids []string) [32]byte {
	n := 1 + 4 + len(a.UID) + 8 + 4 + len(b.UID) + 4 + 4
	if cr != nil {
		n += 1 + cr.UIDLen()
	}
	for _, v := range ids {
		n += 4 + len(v)
	}
	if n > 1024 {
		p := keyBufs.Get().(*[]byte)
		k := appendKey(slices.Grow((*p)[:0], n), a, b, cr, ids)
		sum := sha256.Sum256(k)
		*p = k
		keyBufs.Put(p)
		return sum
	}
	var stack [1024]byte
	return sha256.Sum256(appendKey(stack[:0], a, b, cr, ids))
}

func appendKey(k []byte, a *compile.Authorizer, b *compile.Binding, cr *compile.Credential, ids []string) []byte {
	k = append(k, 2) // key format version
	k = appendString(k, string(a.UID))
	k = binary.BigEndian.AppendUint64(k, a.Revision)
	k = appendString(k, string(b.UID))
	if cr != nil {
		k = cr.AppendUIDKey(k) // starts with 0x00 or 0xff
	} else {
		k = append(k, 1)
	}
	k = binary.BigEndian.AppendUint32(k, uint32(len(ids)))
	for _, v := range ids {
		k = appendString(k, v)
	}
	return k
}

var keyBufs = sync.Pool{New: func() any { return new([]byte) }}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

type holder struct {
	mu       sync.Mutex // serialises changes of state
	state    atomic.Pointer[holderState]
	lastMiss atomic.Int64 // unix nanoseconds of the last miss (or creation)
}

type holderState struct {
	cur, prev *revCache
	prevUntil time.Time
}

// revCacheFor returns the cache of a's revision, or nil when a must not use the cache (an
// older generation than the one in use).
func (cl *Client) revCacheFor(a *compile.Authorizer, now time.Time) *revCache {
	v, ok := cl.holders.Load(a.UID)
	if !ok {
		h := &holder{}
		h.lastMiss.Store(now.UnixNano())
		v, _ = cl.holders.LoadOrStore(a.UID, h)
	}
	h := v.(*holder)
	if st := h.state.Load(); st != nil {
		if st.prev != nil && now.After(st.prevUntil) {
			return h.change(cl, a, now)
		}
		if st.cur.rev == a.Revision {
			return st.cur
		}
		if st.prev != nil && st.prev.rev == a.Revision {
			return st.prev
		}
	}
	return h.change(cl, a, now)
}

// change drops an expired previous cache and installs a's revision when it is new.
func (h *holder) change(cl *Client, a *compile.Authorizer, now time.Time) *revCache {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.state.Load()
	if st == nil {
		rc := newRevCache(h, a)
		h.state.Store(&holderState{cur: rc})
		return rc
	}
	if st.prev != nil && now.After(st.prevUntil) {
		st.prev.kill(cl)
		st = &holderState{cur: st.cur}
		h.state.Store(st)
	}
	switch {
	case st.cur.rev == a.Revision:
		return st.cur
	case st.prev != nil && st.prev.rev == a.Revision:
		return st.prev
	case a.Generation < st.cur.gen:
		return nil
	}
	if st.prev != nil {
		st.prev.kill(cl)
	}
	rc := newRevCache(h, a)
	h.state.Store(&holderState{cur: rc, prev: st.cur, prevUntil: now.Add(st.cur.timeout + time.Second)})
	return rc
}

// maybeSweep starts a sweep of idle holders when the last one is a minute old.
func (cl *Client) maybeSweep(now time.Time) {
	const every = int64(time.Minute)
	t := now.UnixNano()
	last := cl.lastSweep.Load()
	if last == 0 {
		cl.lastSweep.CompareAndSwap(0, t)
		return
	}
	if t-last < every || !cl.lastSweep.CompareAndSwap(last, t) {
		return
	}
	go cl.sweep(now)
}

// sweep drops the holders whose every entry has expired: no miss for longer than the
// largest timeout plus TTL of their revisions.
func (cl *Client) sweep(now time.Time) {
	cl.holders.Range(func(k, v any) bool {
		h := v.(*holder)
		h.mu.Lock()
		defer h.mu.Unlock()
		st := h.state.Load()
		idle := time.Duration(0)
		if st != nil {
			idle = st.cur.timeout + st.cur.ttl
			if st.prev != nil {
				idle = max(idle, st.prev.timeout+st.prev.ttl)
			}
		}
		if now.UnixNano()-h.lastMiss.Load() <= int64(idle+time.Minute) {
			return true
		}
		cl.holders.CompareAndDelete(k, v)
		if st != nil {
			st.cur.kill(cl)
			if st.prev != nil {
				st.prev.kill(cl)
			}
		}
		return true
	})
}

// revCache holds the answers of one revision of an authorizer.
type revCache struct {
	holder       *holder
	rev          uint64
	gen          int64
	ttl, timeout time.Duration
	dead         atomic.Bool // killed: stores refused
	mask         uint64
	shards       []shard
}

// shard is a bounded LRU map and the calls in flight for its keys.
type shard struct {
	mu      sync.Mutex
	m       map[[32]byte]*entry
	lru     entry // sentinel: lru.next is the most recently used
	n, max  int
	flights map[[32]byte]*flight
}

type entry struct {
	key        [32]byte
	res        Result
	expires    time.Time
	prev, next *entry
}

// newRevCache splits a.MaxEntries over up to 64 shards of at least 64 entries each (a
// cache of fewer than 128 entries is one exact LRU); the shard bounds add up to MaxEntries.
func newRevCache(h *holder, a *compile.Authorizer) *revCache {
	total := max(a.MaxEntries, 1)
	n := 1
	for n < 64 && n*2*64 <= total {
		n *= 2
	}
	rc := &revCache{holder: h, rev: a.Revision, gen: a.Generation, ttl: a.TTL, timeout: a.Timeout, mask: uint64(n - 1), shards: make([]shard, n)}
	for i := range rc.shards {
		s := &rc.shards[i]
		s.max = total / n
		if i < total%n {
			s.max++
		}
		s.lru.next, s.lru.prev = &s.lru, &s.lru
	}
	return rc
}

func (rc *revCache) shard(key *[32]byte) *shard {
	return &rc.shards[binary.LittleEndian.Uint64(key[24:])&rc.mask]
}

// kill drops every entry and refuses further stores.
func (rc *revCache) kill(cl *Client) {
	if rc.dead.Swap(true) {
		return
	}
	for i := range rc.shards {
		s := &rc.shards[i]
		s.mu.Lock()
		cl.entries.Add(-int64(s.n))
		s.m, s.n = nil, 0
		s.lru.next, s.lru.prev = &s.lru, &s.lru
		s.mu.Unlock()
	}
}

// get returns the live answer for key, marking it recently used; s.mu is held.
func (s *shard) get(cl *Client, key *[32]byte, now time.Time) (Result, bool) {
	e := s.m[*key]
	if e == nil {
		return Result{}, false
	}
	if !now.Before(e.expires) {
		s.remove(cl, e)
		return Result{}, false
	}
	if s.lru.next != e {
		e.unlink()
		s.pushFront(e)
	}
	return e.res, true
}

// put stores an answer, evicting the least recently used entry when full; s.mu is held.
func (s *shard) put(cl *Client, rc *revCache, key *[32]byte, res Result, expires time.Time) {
	if rc.dead.Load() {
		return
	}
	res.Cached = false
	if e := s.m[*key]; e != nil {
		e.res, e.expires = res, expires
		e.unlink()
		s.pushFront(e)
		return
	}
	if s.n >= s.max {
		if victim := s.lru.prev; victim != &s.lru {
			s.remove(cl, victim)
			cl.evictions.Add(1)
		}
	}
	if s.m == nil {
		s.m = make(map[[32]byte]*entry)
	}
	e := &entry{key: *key, res: res, expires: expires}
	s.m[*key] = e
	s.pushFront(e)
	s.n++
	cl.entries.Add(1)
}

func (s *shard) remove(cl *Client, e *entry) {
	e.unlink()
	delete(s.m, e.key)
	s.n--
	cl.entries.Add(-1)
}

func (s *shard) pushFront(e *entry) {
	e.prev, e.next = &s.lru, s.lru.next
	s.lru.next.prev = e
	s.lru.next = e
}

func (e *entry) unlink() {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}
