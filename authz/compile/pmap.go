package compile

import "hash/maphash"

// shardCount splits every index into this many maps. An incremental build copies only the
// shards it writes, so the cost of a one-object change is about 1/shardCount of an index
// instead of all of it, while a lookup pays one extra hash.
const shardCount = 1 << 9

var seed = maphash.MakeSeed()

func hashString(s string) uint64 { return maphash.String(seed, s) }

// pmap is an immutable map split into shards. A published snapshot never changes its pmaps;
// an edit copies the shards it touches and shares the rest with the previous snapshot.
type pmap[K comparable, V any] struct {
	hash   func(K) uint64
	shards *[shardCount]map[K]V
}

func newPmap[K comparable, V any](hash func(K) uint64) pmap[K, V] {
	return pmap[K, V]{hash: hash, shards: new([shardCount]map[K]V)}
}

// Get returns the value stored under k.
func (m pmap[K, V]) Get(k K) (V, bool) {
	v, ok := m.shards[m.hash(k)%shardCount][k]
	return v, ok
}

// Len counts the entries (it walks every shard; not for the request path).
func (m pmap[K, V]) Len() int {
	n := 0
	for _, s := range m.shards {
		n += len(s)
	}
	return n
}

// Range calls f for every entry, in no particular order, until f returns false.
func (m pmap[K, V]) Range(f func(K, V) bool) {
	for _, s := range m.shards {
		for k, v := range s {
			if !f(k, v) {
				return
			}
		}
	}
}

// edit starts a copy-on-write edit of m; m itself is never changed.
func (m pmap[K, V]) edit() *pmapEdit[K, V] {
	return &pmapEdit[K, V]{base: m}
}

// pmapEdit is a pmap being changed by one build. An edit that writes nothing costs nothing:
// its shard table is a copy of base's made at the first write (most builds touch a few of
// their indexes), and each shard is copied when first written.
type pmapEdit[K comparable, V any] struct {
	base   pmap[K, V]
	shards *[shardCount]map[K]V // nil until the first write
	owned  [shardCount]bool     // a bool each, not bits: workers write their own shards at once
}

// table returns the shard table to read.
func (e *pmapEdit[K, V]) table() *[shardCount]map[K]V {
	if e.shards == nil {
		return e.base.shards
	}
	return e.shards
}

func (e *pmapEdit[K, V]) Get(k K) (V, bool) {
	v, ok := e.table()[e.base.hash(k)%shardCount][k]
	return v, ok
}

// materialize makes the edit's own shard table. Goroutines that write different shards of
// one edit at the same time need it made before they start (see presize).
func (e *pmapEdit[K, V]) materialize() {
	if e.shards == nil {
		t := *e.base.shards
		e.shards = &t
	}
}

func (e *pmapEdit[K, V]) own(i uint64) map[K]V {
	e.materialize()
	if !e.owned[i] {
		old := e.shards[i]
		m := make(map[K]V, len(old)+1)
		for k, v := range old {
			m[k] = v
		}
		e.shards[i] = m
		e.owned[i] = true
	}
	return e.shards[i]
}

// shard returns the index of the shard that holds k. Edits of different shards touch
// different maps, so goroutines may make them at the same time.
func (e *pmapEdit[K, V]) shard(k K) uint64 { return e.base.hash(k) % shardCount }

func (e *pmapEdit[K, V]) Set(k K, v V) {
	e.own(e.base.hash(k) % shardCount)[k] = v
}

func (e *pmapEdit[K, V]) Delete(k K) {
	i := e.base.hash(k) % shardCount
	if _, ok := e.table()[i][k]; !ok {
		return
	}
	delete(e.own(i), k)
}

// freeze ends the edit; the edit must not be used afterwards.
func (e *pmapEdit[K, V]) freeze() pmap[K, V] {
	if e.shards == nil {
		return e.base
	}
	return pmap[K, V]{hash: e.base.hash, shards: e.shards}
}

// Range calls f for every entry of the edit, in no particular order, until f returns false.
func (e *pmapEdit[K, V]) Range(f func(K, V) bool) {
	for _, s := range e.table() {
		for k, v := range s {
			if !f(k, v) {
				return
			}
		}
	}
}

// presize gives every shard room for about n entries in all; a full build calls it so the
// shards do not grow (and rehash) one insert at a time, and before goroutines write the
// edit's shards. The headroom is small on purpose: a Go map rounds its capacity up to a power
// of two, so asking for 25% more than the expected entries usually doubled the table of every
// shard; the few shards that get more than their share grow on their own.
func (e *pmapEdit[K, V]) presize(n int) {
	e.materialize()
	per := n/shardCount + n/shardCount/16 + 1
	for i := range e.shards {
		if !e.owned[i] && len(e.shards[i]) == 0 {
			e.shards[i] = make(map[K]V, per)
			e.owned[i] = true
		}
	}
}
