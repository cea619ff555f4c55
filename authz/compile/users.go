package compile

import "slices"

// The inputs keep two reverse indexes, so that a change finds what it reaches: the
// Credentials naming each Secret, and the APIBindings naming each Credential (in
// spec.app.credentials). An object names objects of its own namespace, so the indexes hold
// names. The names are kept in the named object's own record (secretData.creds,
// credInput.bindings) when the set holds it, else among the orphans until it comes: in the
// records they cost no map entry, where a map of 100,000 credentials cost about 9 MB each.
//
// Each user is added once per target it names (a Credential names one Secret, and a
// binding's names are added without repeats), so an add never searches the list.
//
// Before the first build, which is a full one and needs no index, the indexes are not kept:
// a Kubernetes replica's first lists may bring 100,000 Credentials before their Secrets,
// and each would have waited among the orphans. The first build has them made at once, from
// the objects then held (indexUsers).

// usersIndex is one reverse index: held finds the names kept in a target's record.
type usersIndex struct {
	held    func(target nn) *refs // nil when the set does not hold target
	orphans map[nn]refs
}

func (u *usersIndex) of(target nn) refs {
	if r := u.held(target); r != nil {
		return *r
	}
	return u.orphans[target]
}

func (u *usersIndex) add(target nn, user string) {
	if r := u.held(target); r != nil {
		*r = r.with(user, true)
		return
	}
	if u.orphans == nil {
		u.orphans = map[nn]refs{}
	}
	u.orphans[target] = u.orphans[target].with(user, true)
}

func (u *usersIndex) drop(target nn, user string) {
	if r := u.held(target); r != nil {
		*r, _ = r.without(user)
		return
	}
	rest, found := u.orphans[target].without(user)
	switch {
	case !found:
	case rest.first != "":
		u.orphans[target] = rest
	default:
		u.release(target)
	}
}

// adopt returns the names kept for target among the orphans, which no longer keep them: the
// set now holds target, and its record keeps them.
func (u *usersIndex) adopt(target nn) refs {
	r, ok := u.orphans[target]
	if ok {
		u.release(target)
	}
	return r
}

// orphan keeps the names of a target the set no longer holds.
func (u *usersIndex) orphan(target nn, r refs) {
	if r.first == "" {
		return
	}
	if u.orphans == nil {
		u.orphans = map[nn]refs{}
	}
	u.orphans[target] = r
}

// release forgets target's orphans; an empty map is dropped, since a Go map keeps its size:
// the orphans of a Kubernetes replica's start, where Credentials may come before their
// Secrets, would otherwise stay allocated.
func (u *usersIndex) release(target nn) {
	delete(u.orphans, target)
	if len(u.orphans) == 0 {
		u.orphans = nil
	}
}

// indexUsers makes both indexes from the objects held, as takeChanges hands the first
// build its changes. The records' lists are empty: nothing kept them before. The two
// indexes write different records and maps, so they are made at once, each a namespace at a
// time (one map lookup per name).
func (in *Inputs) indexUsers() {
	in.secretUsers.orphans, in.credUsers.orphans = nil, nil
	fanOut(2, func(w int) {
		if w == 0 {
			for ns, creds := range in.credentials.byNS {
				secrets := in.secrets.namespace(ns)
				for name, c := range creds {
					if s := secrets[c.secretName]; s != nil {
						s.creds = s.creds.with(name, true)
					} else {
						in.secretUsers.add(nn{Namespace: ns, Name: c.secretName}, name)
					}
				}
			}
			return
		}
		for ns, binds := range in.bindings.byNS {
			creds := in.credentials.namespace(ns)
			for name, b := range binds {
				_, named := bindingRefs(b)
				eachOnce(named, func(c string) {
					if cr := creds[c]; cr != nil {
						cr.bindings = cr.bindings.with(name, true)
					} else {
						in.credUsers.add(nn{Namespace: ns, Name: c}, name)
					}
				})
			}
		}
	})
}

// putCredential updates the indexes for c, about to be stored under k (old is what was).
func (in *Inputs) putCredential(k nn, old, c *credInput) {
	if in.fresh {
		return
	}
	if old == nil {
		c.bindings = in.credUsers.adopt(k)
		in.secretUsers.add(nn{Namespace: k.Namespace, Name: c.secretName}, k.Name)
		return
	}
	c.bindings = old.bindings
	if old.secretName != c.secretName {
		in.secretUsers.drop(nn{Namespace: k.Namespace, Name: old.secretName}, k.Name)
		in.secretUsers.add(nn{Namespace: k.Namespace, Name: c.secretName}, k.Name)
	}
}

// deleteCredential updates the indexes for the deletion of old, stored under k.
func (in *Inputs) deleteCredential(k nn, old *credInput) {
	if in.fresh {
		return
	}
	in.credUsers.orphan(k, old.bindings)
	in.secretUsers.drop(nn{Namespace: k.Namespace, Name: old.secretName}, k.Name)
}

// putSecret and deleteSecret do the same for a Secret.
func (in *Inputs) putSecret(k nn, old, s *secretData) {
	if in.fresh {
		return
	}
	if old == nil {
		s.creds = in.secretUsers.adopt(k)
		return
	}
	s.creds = old.creds
}

func (in *Inputs) deleteSecret(k nn, old *secretData) {
	if !in.fresh {
		in.secretUsers.orphan(k, old.creds)
	}
}

// renameBinding updates the indexes for a binding under k that named the credentials in
// old and now names those in now (either may be nil: a new or deleted binding).
func (in *Inputs) renameBinding(k nn, old, now []string) {
	if in.fresh {
		return
	}
	oldNames, nowNames := namesOf(old), namesOf(now)
	eachOnce(old, func(c string) {
		if !nowNames.has(c) {
			in.credUsers.drop(nn{Namespace: k.Namespace, Name: c}, k.Name)
		}
	})
	eachOnce(now, func(c string) {
		if !oldNames.has(c) {
			in.credUsers.add(nn{Namespace: k.Namespace, Name: c}, k.Name)
		}
	})
}

// names is a set of names: a slice scanned while it is short (a binding names a few
// credentials), a map past that (the API server allows 256, a directory any number).
type names struct {
	list []string
	set  map[string]struct{}
}

const namesScanned = 16

func namesOf(list []string) names {
	if len(list) <= namesScanned {
		return names{list: list}
	}
	n := names{set: make(map[string]struct{}, len(list))}
	for _, s := range list {
		n.set[s] = struct{}{}
	}
	return n
}

func (n names) has(s string) bool {
	if n.set != nil {
		_, ok := n.set[s]
		return ok
	}
	return slices.Contains(n.list, s)
}

// eachOnce calls f with each name of list, in order, skipping repeats.
func eachOnce(list []string, f func(string)) {
	if len(list) <= namesScanned {
		for i, s := range list {
			if !slices.Contains(list[:i], s) {
				f(s)
			}
		}
		return
	}
	seen := make(map[string]struct{}, len(list))
	for _, s := range list {
		if _, repeat := seen[s]; !repeat {
			seen[s] = struct{}{}
			f(s)
		}
	}
}
