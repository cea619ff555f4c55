package compile

// claims is an index of appKeys or of AppCode digests in two maps: owners, which the
// request path reads, holds every claimed key and the credential that may use it (nil when
// none may); contested holds the claims of the few keys whose claims are not just their
// owner (owned.list). One map of both (owned, 16 bytes) cost 8 bytes more in each of 100,000
// entries, twice: about 2 MB with its slack, for lists that are nearly always nil.
type claims[K comparable] struct {
	owners    pmap[K, *Credential]
	contested pmap[K, *[]nn]
}

func newClaims[K comparable](hash func(K) uint64) claims[K] {
	return claims[K]{owners: newPmap[K, *Credential](hash), contested: newPmap[K, *[]nn](hash)}
}

// owner returns the credential that may use key (nil when none may or none claims it).
func (c claims[K]) owner(key K) *Credential {
	o, _ := c.owners.Get(key)
	return o
}

// Range calls f for every claimed key, in no particular order, until f returns false.
func (c claims[K]) Range(f func(K, owned) bool) {
	c.owners.Range(func(k K, cred *Credential) bool {
		list, _ := c.contested.Get(k)
		return f(k, owned{cred: cred, list: list})
	})
}

func (c claims[K]) edit() *claimsEdit[K] {
	return &claimsEdit[K]{owners: c.owners.edit(), contested: c.contested.edit()}
}

// claimsEdit is claims being changed by one build. Both maps shard a key alike, so the
// goroutines of a full build that write their own shards of one write their own of the other.
type claimsEdit[K comparable] struct {
	owners    *pmapEdit[K, *Credential]
	contested *pmapEdit[K, *[]nn]
}

// Get returns the entry of key; ok is false when nothing claims it.
func (e *claimsEdit[K]) Get(key K) (o owned, ok bool) {
	if o.cred, ok = e.owners.Get(key); ok {
		o.list, _ = e.contested.Get(key)
	}
	return o, ok
}

// Set stores o (in its compact form) as the entry of key.
func (e *claimsEdit[K]) Set(key K, o owned) {
	e.owners.Set(key, o.cred)
	if o.list != nil {
		e.contested.Set(key, o.list)
	} else {
		e.contested.Delete(key) // copies nothing when key was not contested
	}
}

// Delete removes the entry of key.
func (e *claimsEdit[K]) Delete(key K) {
	e.owners.Delete(key)
	e.contested.Delete(key)
}

// shard returns the index of the shard that holds key, in both maps.
func (e *claimsEdit[K]) shard(key K) uint64 { return e.owners.shard(key) }

// presize gives the owners' shards room for about n keys, and makes both maps' shard tables
// so that goroutines may then write their own shards (see pmapEdit.presize).
func (e *claimsEdit[K]) presize(n int) {
	e.owners.presize(n)
	e.contested.materialize()
}

func (e *claimsEdit[K]) freeze() claims[K] {
	return claims[K]{owners: e.owners.freeze(), contested: e.contested.freeze()}
}
