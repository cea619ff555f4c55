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

// putCredential updates the indexes for c, about to be stored under k (old is what was).
func (in *Inputs) putCredential(k nn, old, c *credInput) {
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
	in.credUsers.orphan(k, old.bindings)
	in.secretUsers.drop(nn{Namespace: k.Namespace, Name: old.secretName}, k.Name)
}

// putSecret and deleteSecret do the same for a Secret.
func (in *Inputs) putSecret(k nn, old, s *secretData) {
	if old == nil {
		s.creds = in.secretUsers.adopt(k)
		return
	}
	s.creds = old.creds
}

func (in *Inputs) deleteSecret(k nn, old *secretData) { in.secretUsers.orphan(k, old.creds) }

// renameBinding updates the indexes for a binding under k that named the credentials in
// old and now names those in now (either may be nil: a new or deleted binding).
func (in *Inputs) renameBinding(k nn, old, now []string) {
	oldNames, nowNames := namesOf(old), namesOf(now)
	seen := namesOf(nil)
	for _, c := range old {
		if !nowNames.has(c) && seen.add(c) {
			in.credUsers.drop(nn{Namespace: k.Namespace, Name: c}, k.Name)
		}
	}
	seen = namesOf(nil)
	for _, c := range now {
		if !oldNames.has(c) && seen.add(c) {
			in.credUsers.add(nn{Namespace: k.Namespace, Name: c}, k.Name)
		}
	}
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

func (n *names) has(s string) bool {
	if n.set != nil {
		_, ok := n.set[s]
		return ok
	}
	return slices.Contains(n.list, s)
}

// add adds s and reports whether it was not there.
func (n *names) add(s string) bool {
	if n.has(s) {
		return false
	}
	if n.set == nil && len(n.list) == namesScanned {
		n.set = make(map[string]struct{}, 2*namesScanned)
		for _, x := range n.list {
			n.set[x] = struct{}{}
		}
		n.list = nil
	}
	if n.set != nil {
		n.set[s] = struct{}{}
	} else {
		n.list = append(n.list, s)
	}
	return true
}
