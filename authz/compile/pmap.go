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
	e := &pmapEdit[K, V]{base: m, shards: *m.shards}
	return e
}

// pmapEdit is a pmap being changed by one build.
type pmapEdit[K comparable, V any] struct {
	base   pmap[K, V]
	shards [shardCount]map[K]V
	owned  [shardCount]bool
}

func (e *pmapEdit[K, V]) Get(k K) (V, bool) {
	v, ok := e.shards[e.base.hash(k)%shardCount][k]
	return v, ok
}

func (e *pmapEdit[K, V]) own(i uint64) map[K]V {
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
	if _, ok := e.shards[i][k]; !ok {
		return
	}
	delete(e.own(i), k)
}

// freeze ends the edit; the edit must not be used afterwards.
func (e *pmapEdit[K, V]) freeze() pmap[K, V] {
	shards := e.shards
	return pmap[K, V]{hash: e.base.hash, shards: &shards}
}

// Range calls f for every entry of the edit, in no particular order, until f returns false.
func (e *pmapEdit[K, V]) Range(f func(K, V) bool) {
	for _, s := range e.shards {
		for k, v := range s {
			if !f(k, v) {
				return
			}
		}
	}
}

// presize gives every shard room for about n entries in all; a full build calls it so the
// shards do not grow (and rehash) one insert at a time. The headroom is small on purpose: a
// Go map rounds its capacity up to a power of two, so asking for 25% more than the expected
// entries usually doubled the table of every shard; the few shards that get more than their
// share grow on their own.
func (e *pmapEdit[K, V]) presize(n int) {
	per := n/shardCount + n/shardCount/16 + 1
	for i := range e.shards {
		if !e.owned[i] && len(e.shards[i]) == 0 {
			e.shards[i] = make(map[K]V, per)
			e.owned[i] = true
		}
	}
}
