package compile

import (
	"iter"
	"slices"
)

// refs is an entry of a reverse index: the names of the objects naming one target, in the
// order they were added. Nearly every target is named by one object (a Credential by one
// APIBinding, a Secret by one Credential), so the first name is held in place and only the
// others take a slice: a slice for each target cost an allocation and its 16 bytes, 200,000
// times in a world of 100,000 Credentials. The zero refs names nothing.
type refs struct {
	first string
	more  *[]string // nil when first is the only one
}

// all yields the names, in the order they were added.
func (r refs) all() iter.Seq[string] {
	return func(yield func(string) bool) {
		if r.first == "" || !yield(r.first) {
			return
		}
		if r.more != nil {
			for _, n := range *r.more {
				if !yield(n) {
					return
				}
			}
		}
	}
}

// last is the name added last ("" when there is none).
func (r refs) last() string {
	if r.more != nil {
		return (*r.more)[len(*r.more)-1]
	}
	return r.first
}

func (r refs) contains(name string) bool {
	return r.first == name || (r.more != nil && slices.Contains(*r.more, name))
}

// with returns r with name added at the end. In place, it may append to r's own slice: a
// full build's, which no snapshot shares yet, or an index of the inputs' (users.go), whose
// lists only the record or orphan holding them reads; else it copies what it changes.
func (r refs) with(name string, inPlace bool) refs {
	switch {
	case r.first == "":
		r.first = name
	case r.more == nil:
		r.more = &[]string{name}
	case inPlace:
		*r.more = append(*r.more, name)
	default:
		more := append(slices.Clip(*r.more), name)
		r.more = &more
	}
	return r
}

// without returns r without name, never changing r's slice, and whether name was in r.
func (r refs) without(name string) (refs, bool) {
	if r.first == name && name != "" {
		if r.more == nil {
			return refs{}, true
		}
		return refsOf(*r.more), true
	}
	if r.more == nil {
		return r, false
	}
	i := slices.Index(*r.more, name)
	if i < 0 {
		return r, false
	}
	return refsOf(append([]string{r.first}, slices.Delete(slices.Clone(*r.more), i, i+1)...)), true
}

// refsOf holds names (not empty) as refs; it keeps a slice of names.
func refsOf(names []string) refs {
	r := refs{first: names[0]}
	if len(names) > 1 {
		more := names[1:len(names):len(names)]
		r.more = &more
	}
	return r
}
